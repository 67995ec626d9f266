-- Signed checkpoints over the audit chain head (Ed25519): "the record at `seq` has hash `head`".
-- Written by the audit writer of any instance in the transaction of the batch that crosses the
-- interval, or by its timer, always under the audit_log lock. Public data: anyone with the
-- published key can check them. Mirrors migrations/sqlite/0002_checkpoints.sql.

CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY NOT NULL,
    head       TEXT NOT NULL,
    time       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
);
