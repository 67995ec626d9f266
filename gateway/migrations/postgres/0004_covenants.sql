-- Covenant versions as administrators drafted or imported them, and the parties' detached
-- signatures over them. A version's document is immutable once stored (its hash is what the
-- parties sign); only its administrative state changes. Signatures are re-verified against the
-- registered covenant keys whenever the gateway builds its covenant snapshot. Mirrors
-- migrations/sqlite/0004_covenants.sql (0003 is unused in both).

CREATE TABLE covenant_versions (
    covenant_id TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    -- The canonical JSON of the covenant version (policy::canonical).
    document    TEXT NOT NULL,
    -- `sha256:<hex>` of `document`.
    hash        TEXT NOT NULL,
    admin_state TEXT NOT NULL CHECK (admin_state IN ('open', 'suspended', 'terminated')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (covenant_id, version)
);

CREATE TABLE covenant_signatures (
    covenant_id TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    party_oin   TEXT COLLATE "C" NOT NULL,
    -- Detached compact JWS over the version's canonical hash (gateway::covenant_sig).
    jws         TEXT NOT NULL,
    signed_at   BIGINT NOT NULL,
    PRIMARY KEY (covenant_id, version, party_oin),
    FOREIGN KEY (covenant_id, version) REFERENCES covenant_versions (covenant_id, version)
);
