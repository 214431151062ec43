ALTER TABLE watermelon_pushed ADD COLUMN pushed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE watermelon_pushed DROP COLUMN pushed_rev;
