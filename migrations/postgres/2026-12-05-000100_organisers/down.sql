DROP INDEX users_unit;
ALTER TABLE users DROP COLUMN unit_id;
