-- poortwachter schema (PostgreSQL). Subjects appear only as HMAC pseudonyms; handover data and
-- consent claims only as AES-256-GCM ciphertext under a per-record data key. Mirrors
-- migrations/sqlite/0001_init.sql; text keys that are sorted or compared by range use the "C"
-- collation, so that order is byte order as in SQLite, whatever the database's locale.

CREATE TABLE consents (
    jti               TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    issuer_oin        TEXT NOT NULL,
    subject_pseudonym TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    covenant_id       TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    registered_at     BIGINT NOT NULL,
    revoked_at        BIGINT,
    wrapped_key       BYTEA NOT NULL,
    sealed_claims     BYTEA NOT NULL
);
CREATE INDEX consents_by_subject ON consents (subject_pseudonym);

CREATE TABLE handovers (
    purpose           TEXT NOT NULL,
    subject_pseudonym TEXT NOT NULL,
    source_oin        TEXT NOT NULL,
    covenant_id       TEXT NOT NULL,
    consent_jti       TEXT,
    stored_at         BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    wrapped_key       BYTEA NOT NULL,
    ciphertext        BYTEA NOT NULL,
    PRIMARY KEY (purpose, subject_pseudonym, source_oin)
);
CREATE INDEX handovers_by_consent ON handovers (consent_jti);
CREATE INDEX handovers_by_expiry ON handovers (expires_at);

-- The audit chain. Writers serialise on `LOCK TABLE audit_log IN EXCLUSIVE MODE` inside the
-- append transaction (store/postgres_checkpoints.rs), read the head there and chain onto it;
-- readers are not blocked. The primary key on `seq` is the backstop: a writer that chained onto a
-- stale head could only collide, never fork the chain.
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    time        TEXT COLLATE "C" NOT NULL,
    kind        TEXT NOT NULL,
    requester_oin TEXT,
    source_oin  TEXT,
    subject_pseudonym TEXT,
    purpose     TEXT,
    decision    TEXT,
    reason      TEXT,
    record      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_by_subject ON audit_log (subject_pseudonym);
CREATE INDEX audit_by_time ON audit_log (time);
