-- Governance (issue #5). Keep in step with migrations/postgres.

-- Grants, column masks and row filters: one table, the spec as JSON (its shape
-- is contracts::policy). `domain` is the one domain a policy lies in (NULL when
-- it spans the mesh): its owners may manage it.
CREATE TABLE policies (
    kind       TEXT    NOT NULL CHECK (kind IN ('grant', 'mask', 'row_filter')),
    name       TEXT    NOT NULL,
    domain     TEXT,
    spec       TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE access_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    domain        TEXT NOT NULL,
    product       TEXT NOT NULL,
    requester     TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,
    justification TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    created_at    TEXT NOT NULL,
    decided_by    TEXT,
    decided_at    TEXT,
    note          TEXT,
    expires_at    TEXT,
    grant_name    TEXT,
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
CREATE INDEX access_requests_product ON access_requests (domain, product, id);
CREATE INDEX access_requests_requester ON access_requests (requester, id);

-- What each gateway last reported about the bundle it serves. Not in the change
-- log: reports are not configuration.
CREATE TABLE gateways (
    name        TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    -- The last bundle it refused, if its latest report refused one.
    rejected_version INTEGER,
    error       TEXT,
    reported_at TEXT    NOT NULL
);

-- Query audit, sent by gateways in batches.
CREATE TABLE audit_records (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    query_id        TEXT    NOT NULL UNIQUE,
    gateway         TEXT    NOT NULL,
    record          TEXT    NOT NULL,
    at              TEXT    NOT NULL
);
CREATE TABLE audit_products (
    domain    TEXT    NOT NULL,
    product   TEXT    NOT NULL,
    record_id INTEGER NOT NULL REFERENCES audit_records (id) ON DELETE CASCADE,
    PRIMARY KEY (domain, product, record_id)
);
