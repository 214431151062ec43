// The WatermelonDB app schema for diemdanh's sync (GET/POST /api/v1/watermelon/sync).
//
// Every table and column the server sends, with the server's names and formats: ids are UUID
// strings, times RFC 3339 strings in UTC (e.g. "2026-12-01T01:00:00.000Z"), dates "YYYY-MM-DD".
// Server bookkeeping (revisions, created/updated times, who recorded attendance) is not synced;
// add `created_at`/`updated_at` number columns of your own if your models want WatermelonDB's
// automatic timestamps (the server ignores columns it does not sync).
//
// Devices write `attendance` and `enrollments` (trainers, in their courses); every other table
// is read-only on devices: the server refuses changes to it (see README.md).
//
// A test (tests/it/watermelon.rs) checks that this file declares exactly what the server sends:
// keep one column per line, as below.

const { appSchema, tableSchema } = require('@nozbe/watermelondb')

const schema = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'units',
      columns: [
        { name: 'code', type: 'string' },
        { name: 'name', type: 'string' },
        { name: 'kind', type: 'string' },
        { name: 'parent_id', type: 'string', isOptional: true, isIndexed: true },
        { name: 'valid_from', type: 'string', isOptional: true },
        { name: 'valid_to', type: 'string', isOptional: true },
        { name: 'merged_into_id', type: 'string', isOptional: true },
      ],
    }),
    tableSchema({
      name: 'people',
      columns: [
        { name: 'full_name', type: 'string' },
        { name: 'birth_date', type: 'string', isOptional: true },
        { name: 'gender', type: 'string', isOptional: true },
        { name: 'phone', type: 'string', isOptional: true },
        { name: 'position', type: 'string' },
        { name: 'unit_id', type: 'string', isOptional: true, isIndexed: true },
        { name: 'term', type: 'string', isOptional: true },
      ],
    }),
    tableSchema({
      name: 'courses',
      columns: [
        { name: 'code', type: 'string', isOptional: true },
        { name: 'title', type: 'string' },
        { name: 'description', type: 'string', isOptional: true },
        { name: 'organizing_unit_id', type: 'string', isOptional: true },
        { name: 'management_level', type: 'string' },
        { name: 'start_date', type: 'string' },
        { name: 'end_date', type: 'string' },
        { name: 'place', type: 'string', isOptional: true },
      ],
    }),
    tableSchema({
      name: 'course_trainers',
      columns: [
        { name: 'course_id', type: 'string', isIndexed: true },
        { name: 'user_id', type: 'string', isIndexed: true },
        { name: 'role', type: 'string' },
      ],
    }),
    tableSchema({
      name: 'sessions',
      columns: [
        { name: 'course_id', type: 'string', isIndexed: true },
        { name: 'topic', type: 'string' },
        { name: 'starts_at', type: 'string' },
        { name: 'ends_at', type: 'string' },
        { name: 'place', type: 'string', isOptional: true },
        { name: 'trainer_id', type: 'string', isOptional: true },
      ],
    }),
    tableSchema({
      name: 'enrollments',
      columns: [
        { name: 'course_id', type: 'string', isIndexed: true },
        { name: 'person_id', type: 'string', isIndexed: true },
        { name: 'status', type: 'string' },
      ],
    }),
    tableSchema({
      name: 'attendance',
      columns: [
        { name: 'session_id', type: 'string', isIndexed: true },
        { name: 'person_id', type: 'string', isIndexed: true },
        { name: 'status', type: 'string' },
        { name: 'checked_in_at', type: 'string', isOptional: true },
        { name: 'note', type: 'string', isOptional: true },
      ],
    }),
    tableSchema({
      name: 'materials',
      columns: [
        { name: 'course_id', type: 'string', isIndexed: true },
        { name: 'title', type: 'string' },
        { name: 'kind', type: 'string' },
        { name: 'language', type: 'string' },
        { name: 'file_name', type: 'string', isOptional: true },
        { name: 'content_type', type: 'string', isOptional: true },
        { name: 'size_bytes', type: 'number', isOptional: true },
        { name: 'sha256', type: 'string', isOptional: true },
        { name: 'version', type: 'number' },
      ],
    }),
  ],
})

// The tables the server syncs, for filtering what `pushChanges` sends (see sync.js).
const SYNCED_TABLES = schema.tables ? Object.keys(schema.tables) : []

module.exports = { schema, SYNCED_TABLES }
