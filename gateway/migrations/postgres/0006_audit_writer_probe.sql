-- One row that the audit writer rewrites while its last write failed (a full disk, a database
-- that went away), to learn without writing an audit record when the database takes writes again:
-- until then the gateway reports itself not ready. It holds a time and zeros (`padding`, as large
-- as a big audit commit, so that a write that fits is a fair sign that commits fit), nothing else.

CREATE TABLE audit_writer_probe (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    probed_at TEXT NOT NULL,
    padding   BYTEA NOT NULL
);
