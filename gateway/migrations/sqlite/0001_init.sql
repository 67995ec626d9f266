-- poortwachter schema (SQLite). Subjects appear only as HMAC pseudonyms; handover data and
-- consent claims only as AES-256-GCM ciphertext under a per-record data key.

CREATE TABLE consents (
    jti               TEXT PRIMARY KEY NOT NULL,
    issuer_oin        TEXT NOT NULL,
    subject_pseudonym TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    covenant_id       TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    registered_at     INTEGER NOT NULL,
    revoked_at        INTEGER,
    wrapped_key       BLOB NOT NULL,
    sealed_claims     BLOB NOT NULL
);
CREATE INDEX consents_by_subject ON consents (subject_pseudonym);

CREATE TABLE handovers (
    purpose           TEXT NOT NULL,
    subject_pseudonym TEXT NOT NULL,
    source_oin        TEXT NOT NULL,
    covenant_id       TEXT NOT NULL,
    consent_jti       TEXT,
    stored_at         INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    wrapped_key       BLOB NOT NULL,
    ciphertext        BLOB NOT NULL,
    PRIMARY KEY (purpose, subject_pseudonym, source_oin)
);
CREATE INDEX handovers_by_consent ON handovers (consent_jti);
CREATE INDEX handovers_by_expiry ON handovers (expires_at);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    time        TEXT NOT NULL,
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
