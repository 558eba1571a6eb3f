-- Governance (issue #5). Keep in step with migrations/sqlite.

-- Grants, column masks and row filters: one table, the spec as JSON (its shape
-- is contracts::policy). `domain` is the one domain a policy lies in (NULL when
-- it spans the mesh): its owners may manage it.
CREATE TABLE policies (
    kind       TEXT COLLATE "C" NOT NULL CHECK (kind IN ('grant', 'mask', 'row_filter')),
    name       TEXT COLLATE "C"    NOT NULL,
    domain     TEXT COLLATE "C",
    spec       JSONB   NOT NULL,
    created_by TEXT COLLATE "C"    NOT NULL,
    created_at TIMESTAMPTZ    NOT NULL,
    updated_at TIMESTAMPTZ    NOT NULL,
    revision   BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE access_requests (
    id            BIGSERIAL PRIMARY KEY,
    domain        TEXT COLLATE "C" NOT NULL,
    product       TEXT COLLATE "C" NOT NULL,
    requester     TEXT COLLATE "C" NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    purpose       TEXT COLLATE "C" NOT NULL,
    justification TEXT COLLATE "C" NOT NULL,
    status        TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    created_at    TIMESTAMPTZ NOT NULL,
    decided_by    TEXT COLLATE "C",
    decided_at    TIMESTAMPTZ,
    note          TEXT COLLATE "C",
    expires_at    TIMESTAMPTZ,
    grant_name    TEXT COLLATE "C",
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
CREATE INDEX access_requests_product ON access_requests (domain, product, id);
CREATE INDEX access_requests_requester ON access_requests (requester, id);

-- What each gateway last reported about the bundle it serves. Not in the change
-- log: reports are not configuration.
CREATE TABLE gateways (
    name        TEXT COLLATE "C"    PRIMARY KEY,
    version     BIGINT NOT NULL,
    hash        TEXT COLLATE "C"    NOT NULL,
    -- The last bundle it refused, if its latest report refused one.
    rejected_version BIGINT,
    error       TEXT COLLATE "C",
    reported_at TIMESTAMPTZ    NOT NULL
);

-- Query audit, sent by gateways in batches.
CREATE TABLE audit_records (
    id              BIGSERIAL PRIMARY KEY,
    query_id        TEXT COLLATE "C"    NOT NULL UNIQUE,
    gateway         TEXT COLLATE "C"    NOT NULL,
    record          JSONB   NOT NULL,
    at              TIMESTAMPTZ    NOT NULL
);
CREATE TABLE audit_products (
    domain    TEXT COLLATE "C"    NOT NULL,
    product   TEXT COLLATE "C"    NOT NULL,
    record_id BIGINT NOT NULL REFERENCES audit_records (id) ON DELETE CASCADE,
    PRIMARY KEY (domain, product, record_id)
);
