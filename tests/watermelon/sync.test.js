// Two WatermelonDB devices (the real @nozbe/watermelondb, LokiJS adapter in memory) syncing
// against a real diemdanh server through the shipped api-spec/watermelondb/sync.js.
//
// Run by tests/it/watermelon.rs, which starts the server, seeds a course with two trainers and
// passes everything in environment variables:
//   DIEMDANH_URL, DIEMDANH_ADMIN, DIEMDANH_TRAINER1 / DIEMDANH_TRAINER2 ("user:password"),
//   DIEMDANH_COURSE (both trainers), DIEMDANH_SESSIONS (two ids), DIEMDANH_PEOPLE (three enrolled),
//   DIEMDANH_OTHER_COURSE / DIEMDANH_OTHER_SESSION / DIEMDANH_OUTSIDER (trainer 2 only; the
//   outsider is enrolled there only), DIEMDANH_OTHER_ASSIGNMENT (trainer 2's assignment to it).
// The server's access tokens live about 6 s, so the devices refresh theirs during the run; the
// administrator's calls sign in each time.
//
// Models are decorator-free: columns are read and written with Model._getRaw/_setRaw, which is
// what WatermelonDB's @field decorator does.

'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { syncWithDiemdanh } = require('../../api-spec/watermelondb/sync')
const {
  env, collectSyncComplaints, localDatabase, dumpTables, attendanceColumns, send, signIn,
  signInAdmin,
} = require('./support')

const BASE = env('DIEMDANH_URL')
const COURSE = env('DIEMDANH_COURSE')
const [S1, S2] = env('DIEMDANH_SESSIONS').split(',')
const [P1, P2, P3] = env('DIEMDANH_PEOPLE').split(',')
const OUTSIDER = env('DIEMDANH_OUTSIDER')
const OTHER_COURSE = env('DIEMDANH_OTHER_COURSE')
const OTHER_SESSION = env('DIEMDANH_OTHER_SESSION')
const OTHER_ASSIGNMENT = env('DIEMDANH_OTHER_ASSIGNMENT')

// WatermelonDB reports a server that sends a record the device has as `created` (or one it
// lacks as `updated`) through its logger: any such message fails the test.
const syncComplaints = collectSyncComplaints()

async function api(method, path, body) {
  return send(BASE, await signInAdmin(BASE, 'admin console'), method, path, body)
}

// One phone: its own WatermelonDB database, signed in as one trainer.
async function device(credentials, name) {
  const tokens = await signIn(BASE, credentials, name)
  const database = localDatabase(name)
  const phone = {
    name,
    database,
    tokens,
    rejected: [],
    signedInAt: Date.now(),
    refreshes: 0,
    auth: {
      getAccessToken: () => phone.tokens.access_token,
      refresh: async () => {
        phone.refreshes += 1
        const response = await fetch(`${BASE}/api/v1/auth/refresh`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: phone.tokens.refresh_token }),
        })
        assert.equal(response.status, 200, 'refresh')
        phone.tokens = { ...phone.tokens, ...(await response.json()) }
        return phone.tokens.access_token
      },
    },
    sync: async () => {
      const log = {}
      await syncWithDiemdanh({
        database,
        baseUrl: BASE,
        auth: phone.auth,
        log,
        onRejected: (reasons) => phone.rejected.push(reasons),
      })
      return log
    },
    collection: (table) => database.get(table),
    find: async (table, id) => {
      const found = await database.get(table).query().fetch()
      return found.find((r) => r.id === id)
    },
    create: async (table, values) =>
      database.write(() =>
        database.get(table).create((record) => {
          for (const [column, value] of Object.entries(values)) record._setRaw(column, value)
        }),
      ),
    update: async (record, values) =>
      database.write(() =>
        record.update((r) => {
          for (const [column, value] of Object.entries(values)) r._setRaw(column, value)
        }),
      ),
    remove: async (record) => database.write(() => record.markAsDeleted()),
    dump: () => dumpTables(database),
    statusOf: async (table, id) => {
      const record = await phone.find(table, id)
      return record && record._raw._status
    },
  }
  return phone
}

const attendance = (phone) => phone.collection('attendance').query().fetch()
const pair = (session, person) => (records) =>
  records.find((r) => r._raw.session_id === session && r._raw.person_id === person)

// `first` syncs, then `last`, then `first` again: the server has taken both devices' changes,
// those of `last` last, and both hold its view.
async function syncInTurn(first, last) {
  await first.sync()
  await last.sync()
  await first.sync()
}

// The server's attendance for the shared course's sessions, as { id: {status, note, ...} }.
async function serverAttendance() {
  const out = {}
  for (const session of [S1, S2]) {
    const page = await api('GET', `/api/v1/attendance?session_id=${session}&limit=500`)
    assert.equal(page.status, 200)
    for (const item of page.json.items) out[item.id] = attendanceColumns(item)
  }
  return out
}

let a
let b

test('two trainers sign in on two devices and pull their scope', async () => {
  a = await device(env('DIEMDANH_TRAINER1'), 'phone-a')
  b = await device(env('DIEMDANH_TRAINER2'), 'phone-b')
  await a.sync()
  await b.sync()
  const dumpA = await a.dump()
  const dumpB = await b.dump()
  assert.deepEqual(Object.keys(dumpA.courses), [COURSE])
  assert.deepEqual(Object.keys(dumpB.courses).sort(), [COURSE, OTHER_COURSE].sort())
  assert.deepEqual(Object.keys(dumpA.sessions).sort(), [S1, S2].sort())
  assert.deepEqual(Object.keys(dumpA.people).sort(), [P1, P2, P3].sort())
  assert.ok(dumpB.people[OUTSIDER], 'trainer 2 sees the other course’s trainee')
  assert.equal(dumpA.sessions[S1].course_id, COURSE)
})

test('attendance recorded offline on both devices syncs to one record per trainee', async () => {
  // Both trainers take the roll of session 1 offline; both record trainee 1 (natural key).
  await a.create('attendance', { session_id: S1, person_id: P1, status: 'present' })
  await a.create('attendance', { session_id: S1, person_id: P2, status: 'present', note: 'đến sớm' })
  await b.create('attendance', { session_id: S1, person_id: P1, status: 'late' })
  await b.create('attendance', { session_id: S1, person_id: P3, status: 'absent' })
  await b.create('attendance', { session_id: OTHER_SESSION, person_id: OUTSIDER, status: 'present' })
  await a.sync()
  await b.sync()
  await a.sync()
  await b.sync()
  const records = await attendance(a)
  assert.equal(records.length, 3, 'one record per trainee on device A')
  assert.equal((await attendance(b)).length, 4, 'device B also has its other course’s record')
  // B's duplicate of trainee 1 was merged into A's record (its later status won).
  assert.equal(pair(S1, P1)(records)._raw.status, 'late')
  assert.equal(pair(S1, P2)(records)._raw.note, 'đến sớm')
  assert.equal(await hasUnsyncedChanges({ database: a.database }), false)
  assert.equal(await hasUnsyncedChanges({ database: b.database }), false)
})

test('the same record edited on both devices converges, whichever syncs first', async () => {
  // A changes the status, B the note: both edits survive, field by field.
  let target = pair(S1, P2)(await attendance(a))
  await a.update(target, { status: 'late' })
  await b.update(pair(S1, P2)(await attendance(b)), { note: 'đi muộn 10 phút' })
  await syncInTurn(a, b)
  for (const phone of [a, b]) {
    const record = pair(S1, P2)(await attendance(phone))
    assert.equal(record._raw.status, 'late', phone.name)
    assert.equal(record._raw.note, 'đi muộn 10 phút', phone.name)
  }
  // Both change the status: the one that reaches the server last wins, in either order.
  await a.update(pair(S1, P2)(await attendance(a)), { status: 'excused' })
  await b.update(pair(S1, P2)(await attendance(b)), { status: 'absent' })
  await syncInTurn(b, a)
  for (const phone of [a, b]) {
    assert.equal(pair(S1, P2)(await attendance(phone))._raw.status, 'excused', phone.name)
  }
  await a.update(pair(S1, P2)(await attendance(a)), { status: 'present' })
  await b.update(pair(S1, P2)(await attendance(b)), { status: 'late' })
  await syncInTurn(a, b)
  for (const phone of [a, b]) {
    assert.equal(pair(S1, P2)(await attendance(phone))._raw.status, 'late', phone.name)
  }
  // The overwritten values from the other device are in the conflict log.
  const conflicts = await api('GET', `/api/v1/sync/conflicts?course_id=${COURSE}`)
  assert.equal(conflicts.status, 200)
  target = pair(S1, P2)(await attendance(a))
  const logged = conflicts.json.items.filter((c) => c.record_id === target.id && c.field === 'status')
  assert.ok(logged.length >= 2, `conflicts logged: ${JSON.stringify(conflicts.json.items)}`)
})

test('a deletion and a concurrent edit: the later push wins, and no edit is lost', async () => {
  // A deletes trainee 3's record while B edits it; A syncs first. B pushes before it pulls, so
  // its edit reaches the server after the deletion and revives the record (as an upsert stamped
  // after a delete does in the native protocol): both devices end with B's edit.
  await a.remove(pair(S1, P3)(await attendance(a)))
  await b.update(pair(S1, P3)(await attendance(b)), { note: 'ốm' })
  await syncInTurn(a, b)
  for (const phone of [a, b]) {
    const revived = pair(S1, P3)(await attendance(phone))
    assert.ok(revived, `${phone.name}: trainee 3's record revived by the later edit`)
    assert.equal(revived._raw.note, 'ốm', phone.name)
  }
  // Now B edits trainee 1's record and syncs first; A deletes it afterwards: the deletion is
  // the later push and wins.
  await b.update(pair(S1, P1)(await attendance(b)), { note: 'có phép' })
  await a.remove(pair(S1, P1)(await attendance(a)))
  await syncInTurn(b, a)
  for (const phone of [a, b]) {
    const records = await attendance(phone)
    assert.equal(pair(S1, P1)(records), undefined, `${phone.name}: trainee 1 deleted`)
  }
  const server = await serverAttendance()
  assert.deepEqual(
    Object.values(server)
      .map((r) => r.person_id)
      .sort(),
    [P2, P3].sort(),
    'trainee 2’s and the revived trainee 3’s records are left on the server',
  )
  // Trainee 3's record goes again, so that the scenarios below start as before.
  await b.remove(pair(S1, P3)(await attendance(b)))
  await b.sync()
  await a.sync()
  assert.equal(pair(S1, P3)(await attendance(a)), undefined)
})

test('a refused record stays unsynced on the device and is in the quarantine', async () => {
  // The outsider is not enrolled in the shared course: the server refuses the record.
  const refused = await a.create('attendance', { session_id: S2, person_id: OUTSIDER, status: 'present' })
  const accepted = await a.create('attendance', { session_id: S2, person_id: P2, status: 'present' })
  await a.sync()
  assert.equal(await a.statusOf('attendance', refused.id), 'created', 'still waiting to sync')
  assert.equal(await a.statusOf('attendance', accepted.id), 'synced')
  assert.deepEqual(a.rejected.at(-1), {
    attendance: {
      [refused.id]: {
        reason: 'not_enrolled',
        message: a.rejected.at(-1).attendance[refused.id].message,
      },
    },
  })
  const quarantine = async () => {
    const page = await api('GET', '/api/v1/sync/quarantine?status=open')
    assert.equal(page.status, 200)
    return page.json.items.filter((item) => item.record_id === refused.id)
  }
  const filed = await quarantine()
  assert.equal(filed.length, 1)
  assert.equal(filed[0].reason, 'not_enrolled')
  // WatermelonDB sends it again with the next sync: refused again, not filed twice.
  await a.sync()
  assert.equal(await a.statusOf('attendance', refused.id), 'created')
  assert.equal((await quarantine()).length, 1)
  // The trainer discards it; the deletion of a record the server never had is accepted.
  await a.remove(await a.find('attendance', refused.id))
  await a.sync()
  assert.equal(await hasUnsyncedChanges({ database: a.database }), false)
})

test('a trainer unassigned from a course loses its records; an edit made offline reaches the quarantine', async () => {
  const before = await b.dump()
  const otherAttendance = Object.keys(before.attendance).filter(
    (id) => before.attendance[id].session_id === OTHER_SESSION,
  )
  assert.equal(otherAttendance.length, 1)
  // B edits the synced record offline; meanwhile an administrator removes B from the course.
  const edited = await b.find('attendance', otherAttendance[0])
  await b.update(edited, { status: 'late', note: 'đến muộn 20 phút' })
  const removed = await api('DELETE', `/api/v1/course-trainers/${OTHER_ASSIGNMENT}`)
  assert.equal(removed.status, 204)
  const rejectedBefore = b.rejected.length
  await b.sync()
  // The edit was pushed before the pull that removes the course: the server refused it and
  // keeps it for an administrator.
  const quarantined = await api('GET', '/api/v1/sync/quarantine?status=open')
  assert.equal(quarantined.status, 200)
  const filed = quarantined.json.items.filter((item) => item.record_id === otherAttendance[0])
  assert.equal(filed.length, 1, `the edit is in the quarantine: ${JSON.stringify(quarantined.json.items)}`)
  assert.equal(filed[0].reason, 'not_assigned')
  assert.equal(filed[0].body.fields.note, 'đến muộn 20 phút')
  assert.equal(filed[0].body.fields.status, 'late')
  assert.equal(b.rejected.length, rejectedBefore + 1, 'the app was told')
  assert.equal(b.rejected.at(-1).attendance[otherAttendance[0]].reason, 'not_assigned')
  // The course left the scope: its records are gone from the device, nothing is left to sync.
  const after = await b.dump()
  assert.deepEqual(Object.keys(after.courses), [COURSE])
  assert.equal(after.sessions[OTHER_SESSION], undefined)
  assert.equal(after.people[OUTSIDER], undefined)
  assert.equal(after.attendance[otherAttendance[0]], undefined)
  assert.ok(
    Object.values(after.enrollments).every((e) => e.course_id === COURSE),
    'no enrollment of the other course is left',
  )
  assert.ok(Object.values(after.course_trainers).every((t) => t.course_id === COURSE))
  assert.equal(await hasUnsyncedChanges({ database: b.database }), false)
  // The server's record is unchanged.
  const page = await api('GET', `/api/v1/attendance?session_id=${OTHER_SESSION}&limit=500`)
  assert.equal(page.status, 200)
  const stored = page.json.items.find((item) => item.id === otherAttendance[0])
  assert.equal(stored.status, 'present')
  assert.equal(stored.note, null)
})

test('both devices end with identical databases that match the server', async () => {
  await syncInTurn(a, b)
  const dumpA = await a.dump()
  const dumpB = await b.dump()
  assert.deepEqual(dumpA, dumpB)
  // A fresh device's first sync is the server's state of the scope.
  const fresh = await device(env('DIEMDANH_TRAINER1'), 'phone-fresh')
  await fresh.sync()
  assert.deepEqual(await fresh.dump(), dumpA)
  assert.deepEqual(dumpA.attendance, await serverAttendance())
  for (const phone of [a, b]) {
    assert.equal(await hasUnsyncedChanges({ database: phone.database }), false, phone.name)
  }
})

test('an expired access token is refreshed during a sync', async () => {
  // Tokens live about 6 s (1 s plus the server's leeway): wait that long after the last
  // refresh at most, then sync; sync.js must refresh on 401 token_expired and carry on.
  const refreshes = a.refreshes
  await new Promise((resolve) => setTimeout(resolve, 7000))
  await a.create('attendance', { session_id: S2, person_id: P3, status: 'present' })
  await a.sync()
  assert.equal(a.refreshes, refreshes + 1, 'one refresh, then the sync went through')
  assert.equal(await hasUnsyncedChanges({ database: a.database }), false)
  await b.sync()
  assert.deepEqual(await b.dump(), await a.dump())
})

test('the server never sent a record the wrong way (no echo)', () => {
  assert.deepEqual(syncComplaints, [])
})
