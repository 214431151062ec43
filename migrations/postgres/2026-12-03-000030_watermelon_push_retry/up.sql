-- A WatermelonDB push retried before the device pulls again (its answer was lost, or the sync
-- was cut half-way) is the same change: each pushed record keeps the key of what was sent
-- (device, record, columns set, last_pulled_at) and the mutation it became, so that the retry
-- gets that mutation's answer instead of being applied again.
ALTER TABLE watermelon_pushed ADD COLUMN retry_key TEXT;
ALTER TABLE watermelon_pushed ADD COLUMN mutation_id TEXT;
-- Whether the device's push deleted the record (it holds none since): should the server's
-- record live on (an edit pushed later by another device revives it), it comes back `created`.
ALTER TABLE watermelon_pushed ADD COLUMN deleted_on_device BOOLEAN NOT NULL DEFAULT FALSE;
