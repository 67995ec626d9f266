-- Signed checkpoints over the audit chain head (Ed25519): "the record at `seq` has hash `head`".
-- Written by the audit writer in the transaction of the batch that crosses the interval, or by
-- its timer. Public data: anyone with the published key can check them.

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY NOT NULL,
    head       TEXT NOT NULL,
    time       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
);
