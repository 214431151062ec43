ALTER TABLE watermelon_pushed DROP COLUMN deleted_on_device;
ALTER TABLE watermelon_pushed DROP COLUMN mutation_id;
ALTER TABLE watermelon_pushed DROP COLUMN retry_key;
