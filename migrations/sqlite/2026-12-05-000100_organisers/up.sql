-- An organiser's unit: the account plans and reads the training of that unit and every unit below
-- it (and of the units merged into them). NULL for every other role. A merge moves the organisers
-- of the unit merged away to the unit it joins (domain::reorganisation).
ALTER TABLE users ADD COLUMN unit_id TEXT REFERENCES units (id);
CREATE INDEX users_unit ON users (unit_id);
