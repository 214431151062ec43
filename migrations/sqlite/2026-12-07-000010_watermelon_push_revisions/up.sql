-- Whether a WatermelonDB pull saw a device's push (kept in lockstep between migrations/sqlite
-- and migrations/postgres). A pushed record is answered by the device's pulls until it
-- acknowledges one that saw the push. That was told by comparing the push's time with the
-- pull's (`pushed_at`, milliseconds): a pull that started after the push took its time but read
-- before it committed was counted as having seen it, and clocks of two instances are not
-- ordered at all. Now a push takes a revision of its own after its writes (`pushed_rev`),
-- committed with them; a pull saw it when the revision its timestamp carries is at least that.
ALTER TABLE watermelon_pushed ADD COLUMN pushed_rev BIGINT NOT NULL DEFAULT 0;
-- The pushes remembered before: a revision this migration takes, so that a pull from before it
-- answers them again (once) and any pull after it counts them seen.
UPDATE revision_counter SET value = value + 1
WHERE id = 1 AND EXISTS (SELECT 1 FROM watermelon_pushed);
UPDATE watermelon_pushed SET pushed_rev = (SELECT value FROM revision_counter WHERE id = 1);
ALTER TABLE watermelon_pushed DROP COLUMN pushed_at;
