-- A counter that every change to the covenant tables increments (by trigger, so any writer counts:
-- this gateway, another instance on the same database, an operator's tool). Each instance polls
-- it and rebuilds its covenant snapshot when it moved (gateway::covenant_sync).

CREATE TABLE covenant_generation (
    singleton  INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    generation INTEGER NOT NULL
);
INSERT INTO covenant_generation (singleton, generation) VALUES (1, 0);

CREATE TRIGGER covenant_versions_inserted AFTER INSERT ON covenant_versions
BEGIN UPDATE covenant_generation SET generation = generation + 1; END;
CREATE TRIGGER covenant_versions_updated AFTER UPDATE ON covenant_versions
BEGIN UPDATE covenant_generation SET generation = generation + 1; END;
CREATE TRIGGER covenant_versions_deleted AFTER DELETE ON covenant_versions
BEGIN UPDATE covenant_generation SET generation = generation + 1; END;
CREATE TRIGGER covenant_signatures_inserted AFTER INSERT ON covenant_signatures
BEGIN UPDATE covenant_generation SET generation = generation + 1; END;
CREATE TRIGGER covenant_signatures_updated AFTER UPDATE ON covenant_signatures
BEGIN UPDATE covenant_generation SET generation = generation + 1; END;
CREATE TRIGGER covenant_signatures_deleted AFTER DELETE ON covenant_signatures
BEGIN UPDATE covenant_generation SET generation = generation + 1; END;
