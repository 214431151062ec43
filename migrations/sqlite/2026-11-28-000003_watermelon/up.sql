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

-- Records a device pushed and still holds, until a pull issued after the push is acknowledged:
-- they come back as `updated` (never `created`), not at all when the device's copy is what the
-- server has (`in_sync_rev`), and an id merged into another record comes back as deleted.
CREATE TABLE watermelon_pushed (
    device_id TEXT NOT NULL REFERENCES devices (id),
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    canonical_id TEXT NOT NULL,
    in_sync_rev BIGINT,
    pushed_rev BIGINT NOT NULL,
    PRIMARY KEY (device_id, collection, record_id)
);
