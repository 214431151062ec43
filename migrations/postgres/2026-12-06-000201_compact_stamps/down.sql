-- Not reversible: the mutation log keeps only the first 16 bytes of each body's hash, so an
-- earlier version would take every replay for a reused id. Restore a backup taken before the
-- upgrade instead.
DO $$ BEGIN
    RAISE EXCEPTION 'migration 000201 cannot be reverted: restore a backup taken before it';
END $$;
