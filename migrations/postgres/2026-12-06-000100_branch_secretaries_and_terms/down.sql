ALTER TABLE training_plans DROP COLUMN elected_since;
ALTER TABLE people DROP COLUMN position_since;
