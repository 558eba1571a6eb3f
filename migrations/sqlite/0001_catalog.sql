-- Tessera catalog schema (SQLite). Keep in step with migrations/postgres.

-- The change sequence: every mutation bumps `version` in its own transaction, which
-- serializes writers and makes the sequence gapless and ordered by commit.
CREATE TABLE catalog_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO catalog_state (id, version) VALUES (1, 0);

CREATE TABLE changes (
    seq           INTEGER PRIMARY KEY,
    at            TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource      TEXT    NOT NULL,
    before        TEXT,
    after         TEXT
);

CREATE TABLE principals (
    name         TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('user', 'service')),
    display_name TEXT    NOT NULL,
    email        TEXT,
    admin        BOOLEAN NOT NULL,
    attributes   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    revision     INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    principal   TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);
CREATE INDEX api_keys_principal ON api_keys (principal);

CREATE TABLE teams (
    name        TEXT    PRIMARY KEY,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    revision    INTEGER NOT NULL
);

CREATE TABLE team_members (
    team      TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    principal TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    PRIMARY KEY (team, principal)
);
CREATE INDEX team_members_principal ON team_members (principal);

CREATE TABLE domains (
    name        TEXT    PRIMARY KEY,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    owner_team  TEXT    NOT NULL REFERENCES teams (name),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    revision    INTEGER NOT NULL
);

CREATE TABLE products (
    domain                  TEXT    NOT NULL REFERENCES domains (name),
    name                    TEXT    NOT NULL,
    title                   TEXT    NOT NULL,
    description             TEXT    NOT NULL,
    owner_team              TEXT    NOT NULL REFERENCES teams (name),
    visibility              TEXT    NOT NULL CHECK (visibility IN ('discoverable', 'restricted')),
    status                  TEXT    NOT NULL CHECK (status IN ('draft', 'published', 'deprecated', 'retired')),
    sunset_date             TEXT,
    -- Denormalized for single-row reads; product_tags / product_inputs are the indexes.
    tags                    TEXT    NOT NULL,
    output_ports            TEXT    NOT NULL,
    input_ports             TEXT    NOT NULL,
    latest_contract_version TEXT,
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL,
    revision                INTEGER NOT NULL,
    PRIMARY KEY (domain, name)
);
CREATE INDEX products_owner_team ON products (owner_team);

CREATE TABLE product_tags (
    domain  TEXT NOT NULL,
    product TEXT NOT NULL,
    tag     TEXT NOT NULL,
    PRIMARY KEY (domain, product, tag),
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
CREATE INDEX product_tags_tag ON product_tags (tag);

CREATE TABLE product_inputs (
    domain     TEXT NOT NULL,
    product    TEXT NOT NULL,
    up_domain  TEXT NOT NULL,
    up_product TEXT NOT NULL,
    PRIMARY KEY (domain, product, up_domain, up_product),
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE,
    FOREIGN KEY (up_domain, up_product) REFERENCES products (domain, name)
);
CREATE INDEX product_inputs_upstream ON product_inputs (up_domain, up_product);

CREATE TABLE contract_versions (
    domain      TEXT    NOT NULL,
    product     TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    api_version TEXT,
    media_type  TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    PRIMARY KEY (domain, product, version),
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
