-- Issue 16: the employee behind a system call, as the hashed record's `actor.sub` says (the
-- verified actor assertion's pseudonymous id), so that the review API can filter by it and the
-- usage report can group by it. NULL for records without a verified actor (and all records
-- written before issue 16). Verification checks the column against the hashed record.

ALTER TABLE audit_log ADD COLUMN actor_sub TEXT;
CREATE INDEX audit_by_actor ON audit_log (actor_sub);
