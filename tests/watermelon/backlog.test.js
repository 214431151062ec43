// Days offline, one sync: a trainer's tablet (the real @nozbe/watermelondb, LokiJS adapter in
// memory) takes the roll of every session of her courses without a network, then syncs more
// records than one push may carry through the shipped api-spec/watermelondb/sync.js, over a
// connection that is cut half-way; a second tablet then pulls exactly what the server holds.
//
// Run by tests/it/watermelon.rs on the demo data (DIEMDANH_URL, DIEMDANH_ADMIN and
// DIEMDANH_TRAINER as "user:password").

'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { syncWithDiemdanh } = require('../../api-spec/watermelondb/sync')
const {
  env, collectSyncComplaints, localDatabase, dumpTables, attendanceColumns, cuttableNetwork,
  takeTheRollOffline, send, signIn, signInAdmin,
} = require('./support')

const BASE = env('DIEMDANH_URL')

// WatermelonDB's complaints about what the server sent fail the run (see sync.test.js).
const syncComplaints = collectSyncComplaints()

// The network between the tablets and the server, whose answer to a push can be lost.
const network = cuttableNetwork()

let adminToken
async function api(method, path, body) {
  if (!adminToken) adminToken = await signInAdmin(BASE, 'admin console')
  return send(BASE, adminToken, method, path, body)
}

async function tablet(name) {
  const tokens = await signIn(BASE, env('DIEMDANH_TRAINER'), name)
  const database = localDatabase(name)
  const all = (table) => database.get(table).query().fetch()
  return {
    database,
    all,
    sync: () =>
      syncWithDiemdanh({
        database,
        baseUrl: BASE,
        auth: { getAccessToken: () => tokens.access_token },
      }),
    dump: () => dumpTables(database),
    dirty: async (table) => (await all(table)).filter((r) => r._raw._status !== 'synced'),
  }
}

// The server's attendance of the given sessions, as { id: columns }.
async function serverAttendance(sessions) {
  const out = {}
  for (const session of sessions) {
    const page = await api('GET', `/api/v1/attendance?session_id=${session}&limit=500`)
    assert.equal(page.status, 200)
    assert.ok(page.json.total <= 500)
    for (const item of page.json.items) out[item.id] = attendanceColumns(item)
  }
  return out
}

let first
let marked = 0
let corrected

test('the tablet takes the roll of every session offline: more than one push may carry', async (t) => {
  first = await tablet('tablet-1')
  await first.sync()
  marked = await takeTheRollOffline(first)
  t.diagnostic(`${marked} attendance records marked offline`)
  assert.ok(marked > 1000, `${marked} records: more than the server takes in one push`)
  assert.equal((await first.dirty('attendance')).length, marked)
})

test('the sync is cut half-way: what the server committed is kept, the rest waits', async () => {
  network.pushes = 0
  network.loseAnswerToPush = 2
  await assert.rejects(first.sync(), /connection cut by the test/)
  network.loseAnswerToPush = null
  const dirty = await first.dirty('attendance')
  assert.ok(dirty.length > 0 && dirty.length < marked, `${dirty.length} of ${marked} still to send`)
  // A record of the page whose answer was lost: the server has it, the tablet does not know.
  const server = await serverAttendance((await first.all('sessions')).map((s) => s.id))
  const lost = dirty.filter((r) => r._raw._status === 'created' && server[r.id])
  assert.ok(lost.length > 0, 'the page whose answer was lost was committed')
  const committed = { id: lost[0].id, ...server[lost[0].id] }
  // An administrator corrects that record before the tablet syncs again.
  const put = await api('PUT', `/api/v1/attendance/${committed.id}`, {
    session_id: committed.session_id,
    person_id: committed.person_id,
    status: 'excused',
    checked_in_at: null,
    note: 'giấy phép của xã',
  })
  assert.equal(put.status, 200)
  corrected = committed.id
})

test('the retry sends the rest; the lost page is answered, not applied again', async () => {
  network.pushes = 0
  await first.sync()
  assert.equal(await hasUnsyncedChanges({ database: first.database }), false, 'nothing left dirty')
  const record = (await first.all('attendance')).find((r) => r.id === corrected)
  assert.equal(record._raw.status, 'excused', 'the correction made after the lost answer stands')
  assert.equal(record._raw.note, 'giấy phép của xã')
})

test('a second tablet pulls exactly what the server holds, in pages', async () => {
  const second = await tablet('tablet-2')
  network.pulls = 0
  await second.sync()
  assert.ok(network.pulls > 1, `the first sync came in ${network.pulls} pages`)
  await first.sync()
  const mine = await first.dump()
  const theirs = await second.dump()
  assert.deepEqual(theirs, mine)
  const sessions = Object.keys(theirs.sessions)
  const server = await serverAttendance(sessions)
  assert.deepEqual(theirs.attendance, server)
  assert.ok(Object.keys(server).length >= marked)
})

test('the server never sent a record the wrong way', () => {
  assert.deepEqual(syncComplaints, [])
})
