-- Contracts and quality (issue #3). Keep in step with migrations/sqlite.
ALTER TABLE products ADD COLUMN compatibility TEXT COLLATE "C" NOT NULL DEFAULT 'consumers'
    CHECK (compatibility IN ('consumers', 'none', 'strict'));
ALTER TABLE products ADD COLUMN health TEXT COLLATE "C" NOT NULL DEFAULT 'unknown'
    CHECK (health IN ('unknown', 'healthy', 'degraded', 'failing'));
-- What changed since the previous version of the same major (compat::Violation list).
ALTER TABLE contract_versions ADD COLUMN changes JSONB NOT NULL DEFAULT '[]';

CREATE TABLE quality_runs (
    id               BIGSERIAL PRIMARY KEY,
    domain           TEXT COLLATE "C" NOT NULL,
    product          TEXT COLLATE "C" NOT NULL,
    contract_version TEXT COLLATE "C" NOT NULL,
    table_version    BIGINT,
    ran_at           TIMESTAMPTZ NOT NULL,
    reported_by      TEXT COLLATE "C" NOT NULL,
    health           TEXT COLLATE "C" NOT NULL,
    results          JSONB NOT NULL,
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
CREATE INDEX quality_runs_product ON quality_runs (domain, product, id);
