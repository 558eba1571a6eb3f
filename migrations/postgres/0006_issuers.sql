-- OpenID Connect issuers (issue #18): each configured issuer's settings and
-- its key set as the catalog last fetched it, one JSON document per issuer.
-- Stored, not only held in memory, so that a bundle's version labels exactly
-- the keys it carries and a restarted catalog has them before the issuer answers.
CREATE TABLE issuers (
    issuer TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
