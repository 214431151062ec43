ALTER TABLE devices DROP COLUMN quarantine_full_at;
DROP INDEX sync_quarantine_device_open;
ALTER TABLE sync_quarantine DROP COLUMN body_hash;
