-- Issue 23, the rest (kept in lockstep between migrations/sqlite and migrations/postgres).
-- Branches (chi đoàn) are units of kind `branch` and their secretaries positions of their own
-- (`branch_secretary`, `branch_deputy_secretary`): no column needed, kinds and positions are
-- checked by the application.
-- The day a person took their current position (their election), when known: a plan may train
-- only the people newly elected this term.
ALTER TABLE people ADD COLUMN position_since TEXT;
-- A plan's "newly elected this term": only people whose position started on or after this day.
ALTER TABLE training_plans ADD COLUMN elected_since TEXT;
