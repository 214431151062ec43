-- Failed logins, one row per failure and scope (the account, the account from one address, the
-- address), kept in the database so that every instance counts the same failures.
CREATE TABLE login_failures (
    id TEXT PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_scope ON login_failures (scope, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
