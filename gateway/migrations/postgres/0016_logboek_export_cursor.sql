-- The Logboek Dataverwerkingen export's cursor: the sequence number of the last audit record the
-- organisation's OTLP receiver acknowledged. One row; it only moves forward, and only after the
-- receiver acknowledged every record up to it (so a receiver outage loses nothing). It holds a
-- sequence number and a time, nothing about any person.

CREATE TABLE logboek_export_cursor (
    singleton   INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    last_seq    BIGINT NOT NULL,
    exported_at TEXT NOT NULL
);
INSERT INTO logboek_export_cursor (singleton, last_seq, exported_at) VALUES (1, 0, '');
