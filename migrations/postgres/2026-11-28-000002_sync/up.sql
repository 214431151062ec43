-- The sync protocol's state (kept in lockstep between migrations/sqlite and migrations/postgres).
-- stamps: per-field hybrid logical clock stamps of a record, a JSON object {"field": "hlc"}.
ALTER TABLE units ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE people ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE courses ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE course_trainers ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE enrollments ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE attendance ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
ALTER TABLE materials ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';

-- Set when a device sent stamps too far in the future (they were re-stamped).
ALTER TABLE devices ADD COLUMN clock_flagged_at BIGINT;

-- Every mutation id ever pushed, with a hash of its body and the result it got: replays answer
-- from here and change nothing.
CREATE TABLE sync_mutations (
    mutation_id TEXT PRIMARY KEY NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    body_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Mutations refused for a business reason, kept for an administrator to fix or dismiss.
CREATE TABLE sync_quarantine (
    id TEXT PRIMARY KEY NOT NULL,
    mutation_id TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    course_id TEXT,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT REFERENCES users (id)
);
CREATE INDEX sync_quarantine_status ON sync_quarantine (status, created_at);

-- Every field value that lost a last-writer-wins merge.
CREATE TABLE sync_conflicts (
    id TEXT PRIMARY KEY NOT NULL,
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    course_id TEXT,
    field TEXT NOT NULL,
    winning_value TEXT NOT NULL,
    winning_stamp TEXT NOT NULL,
    losing_value TEXT NOT NULL,
    losing_stamp TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT REFERENCES users (id)
);
CREATE INDEX sync_conflicts_course ON sync_conflicts (course_id, created_at);

-- Ids that devices created for a natural key the server already had (two devices recording the
-- same trainee): the alias answers as merged into the canonical record.
CREATE TABLE sync_aliases (
    collection TEXT NOT NULL,
    alias_id TEXT NOT NULL,
    canonical_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (collection, alias_id)
);
