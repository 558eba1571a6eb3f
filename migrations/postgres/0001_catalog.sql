-- Tessera catalog schema (PostgreSQL). Keep in step with migrations/sqlite.

-- The change sequence: every mutation bumps `version` in its own transaction, which
-- serializes writers and makes the sequence gapless and ordered by commit.
CREATE TABLE catalog_state (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_state (id, version) VALUES (1, 0);

CREATE TABLE changes (
    seq           BIGINT PRIMARY KEY,
    at            TIMESTAMPTZ    NOT NULL,
    actor         TEXT COLLATE "C"    NOT NULL,
    action        TEXT COLLATE "C"    NOT NULL,
    resource_type TEXT COLLATE "C"    NOT NULL,
    resource      TEXT COLLATE "C"    NOT NULL,
    before        JSONB,
    after         JSONB
);

CREATE TABLE principals (
    name         TEXT COLLATE "C"    PRIMARY KEY,
    kind         TEXT COLLATE "C"    NOT NULL CHECK (kind IN ('user', 'service')),
    display_name TEXT COLLATE "C"    NOT NULL,
    email        TEXT,
    admin        BOOLEAN NOT NULL,
    attributes   JSONB    NOT NULL,
    created_at   TIMESTAMPTZ    NOT NULL,
    updated_at   TIMESTAMPTZ    NOT NULL,
    revision     BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    principal   TEXT COLLATE "C" NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    secret_hash TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_principal ON api_keys (principal);

CREATE TABLE teams (
    name        TEXT COLLATE "C"    PRIMARY KEY,
    title       TEXT COLLATE "C"    NOT NULL,
    description TEXT COLLATE "C"    NOT NULL,
    created_at  TIMESTAMPTZ    NOT NULL,
    updated_at  TIMESTAMPTZ    NOT NULL,
    revision    BIGINT NOT NULL
);

CREATE TABLE team_members (
    team      TEXT COLLATE "C" NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    principal TEXT COLLATE "C" NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    PRIMARY KEY (team, principal)
);
CREATE INDEX team_members_principal ON team_members (principal);

CREATE TABLE domains (
    name        TEXT COLLATE "C"    PRIMARY KEY,
    title       TEXT COLLATE "C"    NOT NULL,
    description TEXT COLLATE "C"    NOT NULL,
    owner_team  TEXT COLLATE "C"    NOT NULL REFERENCES teams (name),
    created_at  TIMESTAMPTZ    NOT NULL,
    updated_at  TIMESTAMPTZ    NOT NULL,
    revision    BIGINT NOT NULL
);

CREATE TABLE products (
    domain                  TEXT COLLATE "C"    NOT NULL REFERENCES domains (name),
    name                    TEXT COLLATE "C"    NOT NULL,
    title                   TEXT COLLATE "C"    NOT NULL,
    description             TEXT COLLATE "C"    NOT NULL,
    owner_team              TEXT COLLATE "C"    NOT NULL REFERENCES teams (name),
    visibility              TEXT COLLATE "C"    NOT NULL CHECK (visibility IN ('discoverable', 'restricted')),
    status                  TEXT COLLATE "C"    NOT NULL CHECK (status IN ('draft', 'published', 'deprecated', 'retired')),
    sunset_date             DATE,
    -- Denormalized for single-row reads; product_tags / product_inputs are the indexes.
    tags                    JSONB    NOT NULL,
    output_ports            JSONB    NOT NULL,
    input_ports             JSONB    NOT NULL,
    latest_contract_version TEXT,
    created_at              TIMESTAMPTZ    NOT NULL,
    updated_at              TIMESTAMPTZ    NOT NULL,
    revision                BIGINT NOT NULL,
    PRIMARY KEY (domain, name)
);
CREATE INDEX products_owner_team ON products (owner_team);

CREATE TABLE product_tags (
    domain  TEXT COLLATE "C" NOT NULL,
    product TEXT COLLATE "C" NOT NULL,
    tag     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (domain, product, tag),
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
CREATE INDEX product_tags_tag ON product_tags (tag);

CREATE TABLE product_inputs (
    domain     TEXT COLLATE "C" NOT NULL,
    product    TEXT COLLATE "C" NOT NULL,
    up_domain  TEXT COLLATE "C" NOT NULL,
    up_product TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (domain, product, up_domain, up_product),
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE,
    FOREIGN KEY (up_domain, up_product) REFERENCES products (domain, name)
);
CREATE INDEX product_inputs_upstream ON product_inputs (up_domain, up_product);

CREATE TABLE contract_versions (
    domain      TEXT COLLATE "C"    NOT NULL,
    product     TEXT COLLATE "C"    NOT NULL,
    version     TEXT COLLATE "C"    NOT NULL,
    api_version TEXT,
    media_type  TEXT COLLATE "C"    NOT NULL,
    document    TEXT COLLATE "C"    NOT NULL,
    created_at  TIMESTAMPTZ    NOT NULL,
    created_by  TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (domain, product, version),
    FOREIGN KEY (domain, product) REFERENCES products (domain, name) ON DELETE CASCADE
);
