-- Back to stamps as JSON objects and the mutation log with device and user ids and full hashes
-- is not possible without the bodies' full hashes; a database is restored from a backup instead.
SELECT 1;
