-- Roster import, unit reorganisation and reports (kept in lockstep between migrations/sqlite and
-- migrations/postgres).

-- A person's past units: a row says the person belonged to unit_id until left_on (exclusive, an
-- ISO date), when a merge (or an edit of the person) moved them. The unit a person belonged to on
-- a day is the unit of their earliest row with left_on after that day, else their current unit;
-- so past attendance stays attributed to the unit it happened in while people move with their
-- units.
CREATE TABLE person_unit_history (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES people (id),
    unit_id TEXT NOT NULL REFERENCES units (id),
    left_on TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX person_unit_history_person ON person_unit_history (person_id, left_on);

-- Reorganisations as they happened: renames (old and new name) and merges (one row per source
-- unit, naming the target), with the date they take effect and who recorded them.
CREATE TABLE unit_events (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units (id),
    kind TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    old_name TEXT,
    new_name TEXT,
    target_unit_id TEXT REFERENCES units (id),
    recorded_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX unit_events_unit ON unit_events (unit_id, effective_date);

-- Reports.
CREATE INDEX courses_end_date ON courses (end_date);
-- The coverage report starts from the few cadres holding the positions and reads only their
-- attendance, from an index that covers it (no table lookups).
CREATE INDEX people_position ON people (position) WHERE deleted_at IS NULL;
CREATE INDEX attendance_report ON attendance (person_id, status, session_id) WHERE deleted_at IS NULL;
