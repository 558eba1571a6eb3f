-- Principals' roles (issue #18): `["gateway"]` for a standalone gateway's
-- service principal, which may read bundles and report, nothing else.
ALTER TABLE principals ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
