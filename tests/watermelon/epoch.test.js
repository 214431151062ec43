// A restore of the server's database while a tablet on the real @nozbe/watermelondb (LokiJS in
// memory) holds a timestamp and a change it has not pushed. `diemdanh new-epoch` is the step of
// a restore that devices notice (tests/it/backup.rs restores for real, over HTTP): the kit's
// sync pushes the change with the old timestamp, the pull is answered 410 `resync_required`,
// and after `unsafeResetDatabase()` the next sync brings the tablet the server's state, its
// change included, with a timestamp of the new epoch.
//
// Run by tests/it/backup.rs (DIEMDANH_URL, DIEMDANH_ADMIN as "user:password", DIEMDANH_BIN and
// DIEMDANH_DB_ARGS, the binary's database arguments as a JSON array).

'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { getLastPulledAt } = require('@nozbe/watermelondb/sync/impl')
const {
  signInAdmin, call, tablet, course, serverAttendance, env, collectSyncComplaints,
} = require('./support')

const BASE = env('DIEMDANH_URL')

// WatermelonDB's complaints about what the server sent fail the run (see sync.test.js).
const syncComplaints = collectSyncComplaints()

test('a tablet pushes its change, is told to start over, and ends with the server state', async () => {
  const admin = await signInAdmin(BASE, 'office')
  const c = await course(BASE, admin, 'EPOCH', 3, 2)
  for (const person of c.personIds) {
    await call(BASE, admin, 'POST', '/api/v1/enrollments', { course_id: c.id, person_id: person })
  }
  const device = await tablet(BASE, c.username, c.password, 'epoch-tablet')
  await device.sync()
  assert.equal(Object.keys(await device.rows('enrollments')).length, 3)
  const before = await getLastPulledAt(device.database)

  // Offline: the roll of one trainee; meanwhile the server's database is restored.
  await device.database.write(() =>
    device.database.get('attendance').create((record) => {
      Object.assign(record._raw, {
        session_id: c.sessionIds[0],
        person_id: c.personIds[0],
        status: 'late',
        note: 'đến muộn 10 phút',
      })
    }),
  )
  execFileSync(env('DIEMDANH_BIN'), [...JSON.parse(env('DIEMDANH_DB_ARGS')), 'new-epoch'])

  await assert.rejects(device.sync(), (e) => e.status === 410 && e.code === 'resync_required')
  assert.equal(await hasUnsyncedChanges({ database: device.database }), false, 'pushed before the pull')
  const server = await serverAttendance(BASE, admin, c.sessionIds)
  assert.deepEqual(
    Object.values(server).map((r) => [r.person_id, r.status, r.note]),
    [[c.personIds[0], 'late', 'đến muộn 10 phút']],
  )

  // What the kit's sync.js tells an app to do on that 410.
  await device.database.write(() => device.database.unsafeResetDatabase())
  await device.sync()
  assert.deepEqual(await device.rows('attendance'), server)
  assert.equal(Object.keys(await device.rows('enrollments')).length, 3)
  const after = await getLastPulledAt(device.database)
  assert.notEqual(Math.floor(after / 2 ** 40), Math.floor(before / 2 ** 40), 'a timestamp of the new epoch')
  assert.ok(Number.isSafeInteger(after))
  await device.sync()
  assert.deepEqual(syncComplaints, [])
})
