-- A device holds at most a configured number of open quarantine entries: the count and the
-- check for an entry already open (a retried refusal is filed once) are index lookups on
-- (device, status, hash of the body), not scans of every open entry. The hash is the SHA-256
-- of the stored body in lowercase hex, as the server computes it.
ALTER TABLE sync_quarantine ADD COLUMN body_hash TEXT;
UPDATE sync_quarantine SET body_hash = encode(sha256(convert_to(body, 'UTF8')), 'hex');
CREATE INDEX sync_quarantine_device_open ON sync_quarantine (device_id, status, body_hash);
-- When a push of the device was refused because its quarantine was full (cleared by its next
-- push that files within the limit): an administrator's cue to look at it.
ALTER TABLE devices ADD COLUMN quarantine_full_at BIGINT;
