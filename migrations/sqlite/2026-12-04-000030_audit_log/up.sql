-- The audit trail: who changed what and when, from which device and address. Written in the
-- transaction of the change it records (a failed login in a small one of its own); pruned after
-- the configured retention. Never holds passwords, password hashes or tokens.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    -- NULL for the command line and for a failed login naming no account.
    user_id TEXT,
    -- The name typed at a failed login (bounded); NULL otherwise.
    username TEXT,
    device_id TEXT,
    address TEXT,
    action TEXT NOT NULL,
    object_type TEXT,
    object_id TEXT,
    -- A small JSON object: what changed.
    details TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_user ON audit_log (user_id, at);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
