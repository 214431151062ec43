-- WatermelonDB sync state (kept in lockstep between migrations/sqlite and migrations/postgres).

-- Each WatermelonDB pull answered to a device: its `timestamp` (the revision it delivered, plus
-- one) and the courses the device held then. The next pull names the timestamp; the courses
-- tell which courses left or entered the device's scope since, as the native cursor does.
CREATE TABLE watermelon_pulls (
    device_id TEXT NOT NULL REFERENCES devices (id),
    pulled_at BIGINT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    courses TEXT,
    issued_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, pulled_at)
);
CREATE INDEX watermelon_pulls_issued ON watermelon_pulls (issued_at);

-- Records a device pushed (refused ones too: the device keeps them), until it acknowledges a
-- pull issued after the push (`pushed_at`, server time): they come back as `updated` (never
-- `created`), not at all while the device's copy is the server's state at `in_sync_rev`, and an
-- id merged into another record (`canonical_id`) comes back as deleted.
CREATE TABLE watermelon_pushed (
    device_id TEXT NOT NULL REFERENCES devices (id),
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    canonical_id TEXT NOT NULL,
    in_sync_rev BIGINT,
    pushed_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, collection, record_id)
);
