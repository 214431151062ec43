-- Compact storage of what every synced attendance record and enrollment carries (kept in
-- lockstep between migrations/sqlite and migrations/postgres).
--
-- Stamp nodes (device ids, server node ids) by number: a stamp names its node by this number
-- instead of repeating a 36-character device id in every field's stamp.
CREATE TABLE sync_nodes (
    number INTEGER PRIMARY KEY NOT NULL,
    node TEXT NOT NULL UNIQUE
);
INSERT INTO sync_nodes (node)
SELECT DISTINCT substr(stamp.value, 20) FROM attendance, json_each(attendance.stamps) AS stamp
UNION
SELECT DISTINCT substr(stamp.value, 20) FROM enrollments, json_each(enrollments.stamps) AS stamp;

-- The stamps of attendance and enrollments, from a JSON object {"field": "MILLIS-COUNTER-NODE"}
-- to one slot per field in the collection's order (attendance: session_id, person_id, status,
-- checked_in_at, note, _deleted; enrollments: course_id, person_id, status, _deleted), joined by
-- ',': empty for a field never stamped, '=' for the same stamp as the slot before, else the 13
-- digits of the millis, the 4 hex digits of the counter and the node's number. Written and read
-- by sync::records.
CREATE TEMP TABLE stamp_slots AS
SELECT attendance.id AS id, fields.name AS name, fields.position AS position,
       CASE WHEN json_extract(attendance.stamps, '$.' || fields.name) IS NULL THEN ''
            ELSE substr(json_extract(attendance.stamps, '$.' || fields.name), 1, 13)
                 || substr(json_extract(attendance.stamps, '$.' || fields.name), 15, 4)
                 || (SELECT number FROM sync_nodes
                     WHERE node = substr(json_extract(attendance.stamps, '$.' || fields.name), 20))
       END AS slot
FROM attendance,
     (SELECT 'session_id' AS name, 1 AS position UNION ALL SELECT 'person_id', 2
      UNION ALL SELECT 'status', 3 UNION ALL SELECT 'checked_in_at', 4
      UNION ALL SELECT 'note', 5 UNION ALL SELECT '_deleted', 6) AS fields;

CREATE INDEX stamp_slots_record ON stamp_slots (id, position);
UPDATE attendance SET stamps = (
    SELECT group_concat(CASE WHEN slot <> '' AND slot = previous THEN '=' ELSE slot END, ','
                        ORDER BY position)
    FROM (SELECT slot, position, lag(slot) OVER (ORDER BY position) AS previous
          FROM stamp_slots WHERE stamp_slots.id = attendance.id)
);
DROP TABLE stamp_slots;

CREATE TEMP TABLE stamp_slots AS
SELECT enrollments.id AS id, fields.name AS name, fields.position AS position,
       CASE WHEN json_extract(enrollments.stamps, '$.' || fields.name) IS NULL THEN ''
            ELSE substr(json_extract(enrollments.stamps, '$.' || fields.name), 1, 13)
                 || substr(json_extract(enrollments.stamps, '$.' || fields.name), 15, 4)
                 || (SELECT number FROM sync_nodes
                     WHERE node = substr(json_extract(enrollments.stamps, '$.' || fields.name), 20))
       END AS slot
FROM enrollments,
     (SELECT 'course_id' AS name, 1 AS position UNION ALL SELECT 'person_id', 2
      UNION ALL SELECT 'status', 3 UNION ALL SELECT '_deleted', 4) AS fields;

CREATE INDEX stamp_slots_record ON stamp_slots (id, position);
UPDATE enrollments SET stamps = (
    SELECT group_concat(CASE WHEN slot <> '' AND slot = previous THEN '=' ELSE slot END, ','
                        ORDER BY position)
    FROM (SELECT slot, position, lag(slot) OVER (ORDER BY position) AS previous
          FROM stamp_slots WHERE stamp_slots.id = enrollments.id)
);
DROP TABLE stamp_slots;

-- The mutation log keeps, per mutation id, the device by its node number, the first 16 bytes
-- of the body's SHA-256 and the result as a compact JSON array (without the id it is stored
-- under); the table is its primary key's B-tree (no second copy of the id in an index).
-- Written and read by sync::mutation_log.
INSERT OR IGNORE INTO sync_nodes (node) SELECT DISTINCT device_id FROM sync_mutations;
CREATE TABLE sync_mutations_compact (
    mutation_id TEXT PRIMARY KEY NOT NULL,
    device INTEGER NOT NULL REFERENCES sync_nodes (number),
    body_hash BLOB NOT NULL,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO sync_mutations_compact (mutation_id, device, body_hash, result, created_at)
SELECT mutation_id,
       (SELECT number FROM sync_nodes WHERE node = device_id),
       unhex(substr(body_hash, 1, 32)),
       CASE WHEN json_extract(result, '$.merged_into') IS NULL
                 AND json_extract(result, '$.reason') IS NULL
                 AND json_extract(result, '$.message') IS NULL
            THEN json_array(json_extract(result, '$.status'), json_extract(result, '$.rev'),
                            json_extract(result, '$.record_id'))
            ELSE json_array(json_extract(result, '$.status'), json_extract(result, '$.rev'),
                            json_extract(result, '$.record_id'),
                            json_extract(result, '$.merged_into'),
                            json_extract(result, '$.reason'), json_extract(result, '$.message'))
       END,
       created_at
FROM sync_mutations;
DROP TABLE sync_mutations;
ALTER TABLE sync_mutations_compact RENAME TO sync_mutations;
