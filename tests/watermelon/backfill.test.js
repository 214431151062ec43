// A course assigned later: a trainer's tablet (the real @nozbe/watermelondb, LokiJS adapter in
// memory) that already synced its own small class is assigned a large class (thousands of
// records, one trainee shared with the small class), whose trainer goes on marking meanwhile.
// The tablet's next sync brings the large class through the shipped api-spec/watermelondb/sync.js
// in pages, over a connection cut half-way and a retry, and ends equal to the server; a second
// tablet's first sync holds the same; unassigned, the tablet loses the class again.
//
// Run by tests/it/watermelon.rs (DIEMDANH_URL, DIEMDANH_ADMIN as "user:password",
// DIEMDANH_BACKFILL_PEOPLE and DIEMDANH_BACKFILL_SESSIONS: the large class's size).

'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const {
  call, login, signInAdmin, tablet, nativePush, mutation, course, serverAttendance, listAll, env,
  collectSyncComplaints,
} = require('./support')

const BASE = env('DIEMDANH_URL')
const PEOPLE = Number(env('DIEMDANH_BACKFILL_PEOPLE'))
const SESSIONS = Number(env('DIEMDANH_BACKFILL_SESSIONS'))

// WatermelonDB's complaints about what the server sent (a record `created` that the tablet
// holds, or `updated` that it does not) fail the run (see sync.test.js).
const syncComplaints = collectSyncComplaints()

// The network between the tablets and the server (support.js's seeding and administrators'
// calls go around it): counts the kit's pulls and the largest page (records and deletions other
// than people, which come with their enrollment beyond the page's size), can run something on
// the server before the answer to the n-th pull, and can lose that answer, as a connection cut
// mid-sync does.
const PULL_PAGE = 1000
const network = { pulls: 0, largestPage: 0, mostPeople: 0, cutAtPull: null, beforePull: null }
const realFetch = globalThis.fetch
globalThis.fetch = async (url, init) => {
  const isPull = String(url).includes('/api/v1/watermelon/sync') && !(init && init.method === 'POST')
  if (isPull) {
    network.pulls += 1
    if (network.beforePull) await network.beforePull(network.pulls)
  }
  const response = await realFetch(url, init)
  if (isPull && response.ok) {
    const page = await response.clone().json()
    let records = 0
    let people = 0
    for (const [table, { created, updated, deleted }] of Object.entries(page.changes)) {
      const count = created.length + updated.length + deleted.length
      if (table === 'people') people += count
      else records += count
    }
    network.largestPage = Math.max(network.largestPage, records)
    network.mostPeople = Math.max(network.mostPeople, people)
  }
  if (isPull && network.pulls === network.cutAtPull) {
    await response.arrayBuffer()
    throw new TypeError('fetch failed: connection cut by the test')
  }
  return response
}

let admin
let small
let large
let assignment
let device
let largeTrainer
// The large class's marks, as { record id: { session_id, person_id } }.
const largeMarks = {}
const tag = Date.now().toString(36)

const byCourse = (rows, courseId) =>
  Object.fromEntries(Object.entries(rows).filter(([, row]) => row.course_id === courseId))
const bySessions = (rows, sessions) =>
  Object.fromEntries(Object.entries(rows).filter(([, row]) => sessions.includes(row.session_id)))

async function serverEnrollments(courseId) {
  const items = await listAll(BASE, admin, `/api/v1/enrollments?course_id=${courseId}`)
  return Object.fromEntries(
    items.map((e) => [e.id, { course_id: e.course_id, person_id: e.person_id, status: e.status }]),
  )
}

// The large class's trainer marks again the given marks, natively.
async function remark(ids, status) {
  await nativePush(
    BASE,
    largeTrainer,
    ids.map((id) => mutation('attendance', { status }, 'upsert', id)),
  )
}

test('a tablet holds its own small class; a large class has its own trainer', async () => {
  admin = await signInAdmin(BASE, 'admin console')
  small = await course(BASE, admin, `S${tag}`, 6, 2)
  large = await course(BASE, admin, `L${tag}`, PEOPLE, SESSIONS)
  const smallTrainer = await login(BASE, small.username, small.password, 'seeding phone')
  await nativePush(
    BASE,
    smallTrainer,
    small.personIds.map((person) =>
      mutation('enrollments', { course_id: small.id, person_id: person, status: 'enrolled' }),
    ),
  )
  // One trainee of the small class is in the large one too: the tablet holds that person.
  const largePeople = [small.personIds[0], ...large.personIds]
  largeTrainer = await login(BASE, large.username, large.password, 'large class phone')
  const seeds = largePeople.map((person) =>
    mutation('enrollments', { course_id: large.id, person_id: person, status: 'enrolled' }),
  )
  for (const session of large.sessionIds) {
    for (const person of largePeople) {
      const m = mutation('attendance', { session_id: session, person_id: person, status: 'present' })
      largeMarks[m.record_id] = { session_id: session, person_id: person }
      seeds.push(m)
    }
  }
  await nativePush(BASE, largeTrainer, seeds)
  device = await tablet(BASE, small.username, small.password, 'backfill-tablet')
  await device.sync()
  assert.equal((await device.all('enrollments')).length, small.personIds.length)
  assert.equal((await device.all('courses')).length, 1)
})

test('assigned the large class, the tablet gets it in pages through a cut connection', async (t) => {
  const me = await call(BASE, device.token, 'GET', '/api/v1/me')
  assignment = await call(BASE, admin, 'POST', '/api/v1/course-trainers', {
    course_id: large.id,
    user_id: me.id,
  })
  // The large class's trainer goes on marking after the assignment: those records reach the
  // tablet through the feed, after the backfill, and are new to it all the same.
  await remark(Object.keys(largeMarks).slice(0, 50), 'late')
  // Marks taken offline in the small class meanwhile: pushed before the pull.
  await device.database.write(async () => {
    await device.database.batch(
      small.personIds.slice(0, 3).map((person) =>
        device.database.get('attendance').prepareCreate((r) => {
          r._setRaw('session_id', small.sessionIds[0])
          r._setRaw('person_id', person)
          r._setRaw('status', 'present')
        }),
      ),
    )
  })

  network.pulls = 0
  network.cutAtPull = 3
  await assert.rejects(device.sync(), /connection cut by the test/)
  network.cutAtPull = null
  // Nothing of the cut pull reached WatermelonDB; the marks went before it.
  assert.equal((await device.all('courses')).length, 1)
  assert.equal(await hasUnsyncedChanges({ database: device.database }), false)

  // The retry starts the pull over. Between two of its pages the class's last marks, which the
  // backfill (in revision order) has not sent yet, change: they leave it for the feed, and
  // reach the tablet all the same.
  network.pulls = 0
  network.beforePull = async (n) => {
    if (n === 2) await remark(Object.keys(largeMarks).slice(-10), 'excused')
  }
  await device.sync()
  network.beforePull = null
  t.diagnostic(`the retry pulled in ${network.pulls} pages, the largest of ${network.largestPage}`)
  assert.ok(network.largestPage <= PULL_PAGE, `a page of ${network.largestPage} records`)
  assert.ok(network.mostPeople <= PULL_PAGE, `a page of ${network.mostPeople} people`)
  const records = Object.keys(largeMarks).length + PEOPLE * 2 + SESSIONS
  assert.ok(network.pulls > records / 1000, `${network.pulls} pages for ${records} records`)

  const server = await serverAttendance(BASE, admin, large.sessionIds)
  assert.equal(Object.keys(server).length, Object.keys(largeMarks).length)
  assert.deepEqual(bySessions(await device.rows('attendance'), large.sessionIds), server)
  const excused = Object.values(server).filter((row) => row.status === 'excused').length
  assert.equal(excused, 10, 'the write between two pages is on the tablet')
  assert.deepEqual(byCourse(await device.rows('enrollments'), large.id), await serverEnrollments(large.id))
  const sessions = byCourse(await device.rows('sessions'), large.id)
  assert.deepEqual(Object.keys(sessions).sort(), [...large.sessionIds].sort())
  const people = Object.keys(await device.rows('people'))
  for (const person of [...small.personIds, ...large.personIds]) assert.ok(people.includes(person))
  assert.equal((await device.all('courses')).length, 2)
})

test('a second tablet pulls exactly what the first holds', async () => {
  const second = await tablet(BASE, small.username, small.password, 'backfill-tablet-2')
  await second.sync()
  await device.sync()
  for (const table of ['courses', 'course_trainers', 'sessions', 'people', 'enrollments', 'attendance']) {
    assert.deepEqual(await second.rows(table), await device.rows(table), table)
  }
})

test('unassigned, the tablet loses the large class and keeps its own', async (t) => {
  await call(BASE, admin, 'DELETE', `/api/v1/course-trainers/${assignment.id}`)
  Object.assign(network, { pulls: 0, largestPage: 0, mostPeople: 0 })
  await device.sync()
  // The deletions come in pages of the kit's size too, never one answer of thousands of ids.
  t.diagnostic(`the deletions came in ${network.pulls} pages, the largest of ${network.largestPage}`)
  assert.ok(network.largestPage <= PULL_PAGE, `a page of ${network.largestPage} deletions`)
  assert.ok(network.mostPeople <= PULL_PAGE, `a page of ${network.mostPeople} people`)
  assert.ok(network.pulls > 3 * PEOPLE / PULL_PAGE, `${network.pulls} pages`)
  assert.deepEqual(Object.keys(bySessions(await device.rows('attendance'), large.sessionIds)), [])
  assert.deepEqual(Object.keys(byCourse(await device.rows('enrollments'), large.id)), [])
  assert.deepEqual(Object.keys(byCourse(await device.rows('sessions'), large.id)), [])
  assert.deepEqual(
    (await device.all('courses')).map((c) => c.id),
    [small.id],
  )
  const people = Object.keys(await device.rows('people')).sort()
  assert.deepEqual(people, [...small.personIds].sort(), 'the shared trainee stays, the others go')
  assert.equal((await device.all('attendance')).length, 3)
})

test('the server never sent a record the wrong way', () => {
  assert.deepEqual(syncComplaints, [])
})
