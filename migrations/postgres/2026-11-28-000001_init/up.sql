-- Initial schema (PostgreSQL). Kept in lockstep with migrations/sqlite.
-- Ids are client-generatable UUIDs stored as TEXT; times are Unix epoch milliseconds (server clock);
-- calendar dates are ISO 'YYYY-MM-DD' text. Synced tables carry rev (server revision, from
-- revision_counter), created_at/updated_at and a deleted_at tombstone instead of hard deletes.

CREATE TABLE server_settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE revision_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision_counter (id, value) VALUES (1, 0);

CREATE TABLE units (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent_id TEXT REFERENCES units (id),
    valid_from TEXT,
    valid_to TEXT,
    merged_into_id TEXT REFERENCES units (id),
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX units_code ON units (code) WHERE deleted_at IS NULL;
CREATE INDEX units_parent ON units (parent_id);
CREATE INDEX units_rev ON units (rev);

CREATE TABLE people (
    id TEXT PRIMARY KEY NOT NULL,
    full_name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    birth_date TEXT,
    gender TEXT,
    phone TEXT,
    position TEXT NOT NULL,
    unit_id TEXT REFERENCES units (id),
    term TEXT,
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX people_unit ON people (unit_id);
CREATE INDEX people_sort ON people (sort_key);
CREATE INDEX people_phone ON people (phone);
CREATE INDEX people_rev ON people (rev);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    person_id TEXT REFERENCES people (id),
    password_hash TEXT NOT NULL,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices (id),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (device_id);

CREATE TABLE courses (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT,
    title TEXT NOT NULL,
    title_key TEXT NOT NULL,
    description TEXT,
    organizing_unit_id TEXT REFERENCES units (id),
    management_level TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    place TEXT,
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX courses_rev ON courses (rev);

CREATE TABLE course_trainers (
    id TEXT PRIMARY KEY NOT NULL,
    course_id TEXT NOT NULL REFERENCES courses (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX course_trainers_pair ON course_trainers (course_id, user_id);
CREATE INDEX course_trainers_user ON course_trainers (user_id);
CREATE INDEX course_trainers_rev ON course_trainers (rev);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    course_id TEXT NOT NULL REFERENCES courses (id),
    topic TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    place TEXT,
    trainer_id TEXT REFERENCES users (id),
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX sessions_course ON sessions (course_id);
CREATE INDEX sessions_rev ON sessions (rev);

CREATE TABLE enrollments (
    id TEXT PRIMARY KEY NOT NULL,
    course_id TEXT NOT NULL REFERENCES courses (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    status TEXT NOT NULL,
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX enrollments_pair ON enrollments (course_id, person_id);
CREATE INDEX enrollments_person ON enrollments (person_id);
CREATE INDEX enrollments_rev ON enrollments (rev);

CREATE TABLE attendance (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    status TEXT NOT NULL,
    checked_in_at BIGINT,
    note TEXT,
    recorded_by TEXT NOT NULL REFERENCES users (id),
    recorded_device TEXT REFERENCES devices (id),
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX attendance_pair ON attendance (session_id, person_id);
CREATE INDEX attendance_person ON attendance (person_id);
CREATE INDEX attendance_rev ON attendance (rev);

CREATE TABLE materials (
    id TEXT PRIMARY KEY NOT NULL,
    course_id TEXT NOT NULL REFERENCES courses (id),
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    language TEXT NOT NULL,
    file_name TEXT,
    content_type TEXT,
    size_bytes BIGINT,
    sha256 TEXT,
    version INTEGER NOT NULL,
    rev BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX materials_course ON materials (course_id);
CREATE INDEX materials_rev ON materials (rev);
