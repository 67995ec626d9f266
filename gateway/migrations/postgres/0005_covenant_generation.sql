-- A counter that every change to the covenant tables increments (by trigger, so any writer counts:
-- this gateway, another instance on the same database, an operator's tool), in the transaction of
-- the change, so it becomes visible together with it. Each instance polls it and rebuilds its
-- covenant snapshot when it moved (gateway::covenant_sync). Mirrors the SQLite migration 0005.

CREATE TABLE covenant_generation (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    generation BIGINT NOT NULL
);
INSERT INTO covenant_generation (singleton, generation) VALUES (TRUE, 0);

CREATE FUNCTION covenant_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE covenant_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER covenant_versions_changed AFTER INSERT OR UPDATE OR DELETE ON covenant_versions
    FOR EACH ROW EXECUTE FUNCTION covenant_generation_bump();
CREATE TRIGGER covenant_versions_truncated AFTER TRUNCATE ON covenant_versions
    FOR EACH STATEMENT EXECUTE FUNCTION covenant_generation_bump();
CREATE TRIGGER covenant_signatures_changed AFTER INSERT OR UPDATE OR DELETE ON covenant_signatures
    FOR EACH ROW EXECUTE FUNCTION covenant_generation_bump();
CREATE TRIGGER covenant_signatures_truncated AFTER TRUNCATE ON covenant_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION covenant_generation_bump();
