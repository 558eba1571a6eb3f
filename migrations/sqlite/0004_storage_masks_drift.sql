-- Storage ownership, keyed masks, drift (issue #16). Keep in step with migrations/postgres.

-- Each domain's storage roots: a JSON list of URL prefixes ending in `/`. Empty
-- for domains created by earlier versions: the catalog gives them the default
-- root (`<lake root>/<domain>/`) at its next start.
ALTER TABLE domains ADD COLUMN storage_roots TEXT NOT NULL DEFAULT '[]';

-- The mesh's secret key for `hash` masks (64 lower-case hex digits), created
-- at first start; only bundles carry it.
ALTER TABLE catalog_state ADD COLUMN mask_key TEXT;

-- The products whose tables a gateway found drifting from their contracts, as
-- of its latest report (a JSON list of api::Drift).
ALTER TABLE gateways ADD COLUMN drift TEXT NOT NULL DEFAULT '[]';
