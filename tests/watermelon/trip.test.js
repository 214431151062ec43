// A trip's worth of offline work: a trainer's tablet (the real @nozbe/watermelondb, LokiJS
// adapter in memory) pulls its course, then changes 20,000 records without a network
// (attendance and enrollments: creates, updates and deletes mixed; some marks of trainees another
// phone marked meanwhile, some in a course the trainer does not teach), and syncs them through
// the shipped api-spec/watermelondb/sync.js over a connection cut half-way, then again. A
// second tablet that pulled the course before the trip, away meanwhile, then pulls those
// changes (in pages) and a third tablet the whole course: both hold exactly what the server holds. The course and the trip are those of
// measure.js (support.js).
//
// Run by tests/it/watermelon.rs on the demo data: DIEMDANH_URL, DIEMDANH_ADMIN ("user:password"),
// DIEMDANH_TRIP_RECORDS (the changed records, 20,000 in the suite).

'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const {
  call, login, signInAdmin, tablet, nativePush, mutation, seedMixed, tripOffline, serverAttendance,
  sum, env, collectSyncComplaints, cuttableNetwork,
} = require('./support')

const BASE = env('DIEMDANH_URL')
const RECORDS = Number(env('DIEMDANH_TRIP_RECORDS'))

// WatermelonDB's complaints about what the server sent fail the run (see sync.test.js).
const syncComplaints = collectSyncComplaints()

// The network between the tablets and the server, whose answer to a push can be lost.
const network = cuttableNetwork()

const STRAYS = 5
let admin
let course
let device
// A tablet of the same trainer that pulled the course before the trip and was away since.
let away
let changes
// Marks the tablet created that another phone of the trainer had recorded first (merged into
// that phone's records), and marks in a course the trainer does not teach (refused).
let merged
let strays
let strayCourse
let corrected

async function quarantined() {
  const page = await call(
    BASE,
    admin,
    'GET',
    `/api/v1/sync/quarantine?status=open&course_id=${strayCourse}&limit=100`,
  )
  return page.items.map((item) => item.record_id).sort()
}

test('the tablet changes 20,000 records offline', async (t) => {
  admin = await signInAdmin(BASE, 'admin console')
  course = await seedMixed(BASE, admin)
  device = await tablet(BASE, course.username, course.password, 'trip-tablet')
  await device.sync()
  away = await tablet(BASE, course.username, course.password, 'trip-tablet-away')
  await away.sync()
  changes = await tripOffline(device, course, RECORDS - STRAYS)

  // Another phone of the trainer marks ten of the trainees the tablet marked offline: the
  // server keeps one record per trainee and session, the phone's.
  const created = (await device.all('attendance')).filter((r) => r._raw._status === 'created')
  merged = created.slice(-10).map((r) => ({
    tablet: r.id,
    phone: randomUUID(),
    session_id: r._raw.session_id,
    person_id: r._raw.person_id,
  }))
  const phone = await login(BASE, course.username, course.password, 'trip-phone')
  await nativePush(
    BASE,
    phone,
    merged.map((m) =>
      mutation(
        'attendance',
        { session_id: m.session_id, person_id: m.person_id, status: 'present' },
        'upsert',
        m.phone,
      ),
    ),
  )

  // Marks in a demo class the trainer does not teach: refused and quarantined, once each.
  const demoSessions = await call(BASE, admin, 'GET', '/api/v1/sessions?limit=100')
  const stray = demoSessions.items.find((s) => s.course_id !== course.id)
  strayCourse = stray.course_id
  await device.database.write(async () => {
    const batch = course.personIds.slice(0, STRAYS).map((person) =>
      device.database.get('attendance').prepareCreate((r) => {
        r._setRaw('session_id', stray.id)
        r._setRaw('person_id', person)
        r._setRaw('status', 'present')
      }),
    )
    strays = batch.map((r) => r.id).sort()
    await device.database.batch(batch)
  })
  assert.equal(sum(changes) + STRAYS, RECORDS)
  t.diagnostic(`changes: ${JSON.stringify(changes)} and ${STRAYS} marks in another course`)
  assert.deepEqual(await quarantined(), [])
})

test('the sync is cut half-way: what the server committed is kept, the rest waits', async () => {
  network.pushes = 0
  network.loseAnswerToPush = 15
  await assert.rejects(device.sync(), /connection cut by the test/)
  network.loseAnswerToPush = null
  const dirty = (await device.all('attendance')).filter((r) => r._raw._status !== 'synced')
  assert.ok(dirty.length > 0 && dirty.length < RECORDS, `${dirty.length} of ${RECORDS} still to send`)
  // A record of the page whose answer was lost: the server has it, the tablet does not know.
  const server = await serverAttendance(BASE, admin, course.sessionIds)
  const lost = dirty.find((r) => r._raw._status === 'created' && server[r.id])
  assert.ok(lost, 'the page whose answer was lost was committed')
  // An administrator corrects that record before the tablet syncs again.
  const { session_id, person_id } = server[lost.id]
  await call(BASE, admin, 'PUT', `/api/v1/attendance/${lost.id}`, {
    session_id,
    person_id,
    status: 'excused',
    checked_in_at: null,
    note: 'giấy phép của xã',
  })
  corrected = lost.id
})

test('the retry sends the rest: nothing applied twice, nothing left but the refused', async (t) => {
  network.pushes = 0
  const refused = []
  await device.sync({ onRejected: (reasons) => refused.push(reasons) })
  t.diagnostic(`the retry made ${network.pushes} pushes`)
  // The refused marks stay pending on the tablet (WatermelonDB keeps them), each quarantined
  // once although the first attempt sent them too.
  assert.deepEqual(Object.keys(refused[0].attendance).sort(), strays)
  for (const reason of Object.values(refused[0].attendance)) assert.equal(reason.reason, 'not_assigned')
  assert.deepEqual(await quarantined(), strays)
  const pending = (await device.all('attendance')).filter((r) => r._raw._status !== 'synced')
  assert.deepEqual(pending.map((r) => r.id).sort(), strays)
  assert.deepEqual(await device.database.adapter.getDeletedRecords('attendance'), [])
  assert.deepEqual(await device.database.adapter.getDeletedRecords('enrollments'), [])
  assert.equal(
    (await device.all('enrollments')).filter((r) => r._raw._status !== 'synced').length,
    0,
  )
  // The lost page was answered, not applied again: the later correction stands.
  const record = (await device.all('attendance')).find((r) => r.id === corrected)
  assert.equal(record._raw.status, 'excused')
  assert.equal(record._raw.note, 'giấy phép của xã')
  // The marks another phone recorded first: the tablet dropped its ids for the phone's records.
  const held = new Set((await device.all('attendance')).map((r) => r.id))
  for (const m of merged) {
    assert.ok(!held.has(m.tablet) && held.has(m.phone), 'merged into the phone record')
  }
})

test('every tablet holds exactly what the server holds', async (t) => {
  // The refused marks are not the course's: the tablet keeps them for the trainer to fix.
  await device.database.write(async () => {
    const batch = (await device.all('attendance'))
      .filter((r) => strays.includes(r.id))
      .map((r) => r.prepareDestroyPermanently())
    await device.database.batch(batch)
  })
  // The tablet that was away gets the trip's changes in pages of an incremental pull.
  network.pulls = 0
  await away.sync()
  t.diagnostic(`the tablet away pulled the trip in ${network.pulls} pages`)
  assert.ok(network.pulls > 10, `${network.pulls} pages`)
  const second = await tablet(BASE, course.username, course.password, 'trip-tablet-2')
  await second.sync()
  await device.sync()
  const server = await serverAttendance(BASE, admin, course.sessionIds)
  assert.deepEqual(await device.rows('attendance'), server)
  assert.deepEqual(await away.rows('attendance'), server)
  assert.deepEqual(await second.rows('attendance'), server)
  assert.deepEqual(await second.rows('enrollments'), await device.rows('enrollments'))
  assert.deepEqual(await away.rows('enrollments'), await device.rows('enrollments'))
  const enrollments = await call(
    BASE,
    admin,
    'GET',
    `/api/v1/enrollments?course_id=${course.id}&limit=500`,
  )
  assert.equal(enrollments.total, Object.keys(await device.rows('enrollments')).length)
  // Every change of the trip is there: created and kept, updated, deleted.
  // (The tablet's marks merged into the phone's records count once, as the phone's.)
  const expected = 300 * 20 - changes.attendance.deleted + changes.attendance.created
  assert.equal(Object.keys(server).length, expected)
  assert.equal(await hasUnsyncedChanges({ database: device.database }), false)
})

test('the server never sent a record the wrong way', () => {
  assert.deepEqual(syncComplaints, [])
})
