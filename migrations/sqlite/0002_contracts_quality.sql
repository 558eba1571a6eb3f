-- Contracts and quality (issue #3). Keep in step with migrations/postgres.
ALTER TABLE products ADD COLUMN compatibility TEXT NOT NULL DEFAULT 'consumers'
    CHECK (compatibility IN ('consumers', 'none', 'strict'));
ALTER TABLE products ADD COLUMN health TEXT NOT NULL DEFAULT 'unknown'
    CHECK (health IN ('unknown', 'healthy', 'degraded', 'failing'));
-- What changed since the previous version of the same major (compat::Violation list).
ALTER TABLE contract_versions ADD COLUMN changes TEXT NOT NULL DEFAULT '[]';

CREATE TABLE quality_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    domain           TEXT    NOT NULL,
    product          TEXT    NOT NULL,
    contract_version TEXT    NOT NULL,
    table_version    INTEGER,
    ran_at           TEXT    NOT NULL,
    reported_by      TEXT    NOT NULL,
    health           TEXT    NOT NULL,
    results          TEXT    NOT NULL,
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
CREATE INDEX quality_runs_product ON quality_runs (domain, product, id);
