-- Yearly training plans (kept in lockstep between migrations/sqlite and migrations/postgres).
-- A plan belongs to a unit and a year (at most one live plan per unit and year): whom it trains
-- (target positions, the share to train), what counts as trained (the completion rule of a
-- planned course, or a number of sessions on required topics) and the courses planned for it.
-- Plans are not synced to devices: no feed reads these tables; `rev` is the ETag.
CREATE TABLE training_plans (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units (id),
    year INTEGER NOT NULL,
    title TEXT NOT NULL,
    -- Comma-separated position codes (domain::people::POSITIONS, which hold no comma).
    target_positions TEXT NOT NULL,
    -- Percent of the target group to train.
    target_percent INTEGER NOT NULL,
    -- `course_completion` (min_rate) or `sessions_on_topics` (min_sessions, the topics below).
    rule TEXT NOT NULL,
    min_rate INTEGER,
    min_sessions INTEGER,
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX training_plans_unit_year ON training_plans (unit_id, year)
    WHERE deleted_at IS NULL;
CREATE INDEX training_plans_year ON training_plans (year);

-- The courses planned in a plan, in the plan's order, with their planned dates.
CREATE TABLE training_plan_courses (
    plan_id TEXT NOT NULL REFERENCES training_plans (id),
    ordinal INTEGER NOT NULL,
    course_id TEXT NOT NULL REFERENCES courses (id),
    planned_start TEXT NOT NULL,
    planned_end TEXT NOT NULL,
    PRIMARY KEY (plan_id, ordinal)
);
CREATE INDEX training_plan_courses_course ON training_plan_courses (course_id);

-- The required topics of a `sessions_on_topics` plan (NFC, with a folded key for matching).
CREATE TABLE training_plan_topics (
    plan_id TEXT NOT NULL REFERENCES training_plans (id),
    ordinal INTEGER NOT NULL,
    topic TEXT NOT NULL,
    topic_key TEXT NOT NULL,
    PRIMARY KEY (plan_id, ordinal)
);
