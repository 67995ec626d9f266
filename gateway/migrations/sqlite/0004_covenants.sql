-- Covenant versions as administrators drafted or imported them, and the parties' detached
-- signatures over them. A version's document is immutable once stored (its hash is what the
-- parties sign); only its administrative state changes. Signatures are re-verified against the
-- registered covenant keys whenever the gateway builds its covenant snapshot.

CREATE TABLE covenant_versions (
    covenant_id TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    -- The canonical JSON of the covenant version (policy::canonical).
    document    TEXT NOT NULL,
    -- `sha256:<hex>` of `document`.
    hash        TEXT NOT NULL,
    admin_state TEXT NOT NULL CHECK (admin_state IN ('open', 'suspended', 'terminated')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (covenant_id, version)
);

CREATE TABLE covenant_signatures (
    covenant_id TEXT NOT NULL,
    version     INTEGER NOT NULL,
    party_oin   TEXT NOT NULL,
    -- Detached compact JWS over the version's canonical hash (gateway::covenant_sig).
    jws         TEXT NOT NULL,
    signed_at   INTEGER NOT NULL,
    PRIMARY KEY (covenant_id, version, party_oin),
    FOREIGN KEY (covenant_id, version) REFERENCES covenant_versions (covenant_id, version)
);
