-- The database's identity: its epoch, which `diemdanh restore` (and `diemdanh new-epoch` after a
-- PostgreSQL restore) replaces. Pull cursors and WatermelonDB timestamps carry the epoch they
-- were issued in; one of another epoch comes from before a restore, when the revision counter
-- was elsewhere, and is answered 410 `resync_required`. Every database starts in epoch 0, so
-- cursors and timestamps issued before this migration (which carry none) stay valid until the
-- first restore.
CREATE TABLE database_identity (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    epoch BIGINT NOT NULL,
    -- When the epoch began (server time, Unix ms; 0 for the first).
    began_at BIGINT NOT NULL
);
INSERT INTO database_identity (id, epoch, began_at) VALUES (1, 0, 0);
