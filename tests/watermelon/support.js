// What the WatermelonDB scenarios are made of: tablets on the real
// library and the shipped kit, a seeded course of their own, and a trip's worth of offline changes.

'use strict'

const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const { Database, Model } = require('@nozbe/watermelondb')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { schema, SYNCED_TABLES } = require('../../api-spec/watermelondb/schema')
const { syncWithDiemdanh } = require('../../api-spec/watermelondb/sync')

// diemdanh ids are UUIDs: WatermelonDB must generate them (see api-spec/watermelondb/README.md).
setGenerator(() => randomUUID())
const modelClasses = SYNCED_TABLES.map((table) => {
  const cls = class extends Model {}
  cls.table = table
  return cls
})

// Seeding and administrators' calls go around any fetch a scenario wraps to count or cut the
// kit's requests.
const directFetch = globalThis.fetch

// One request with a bearer token and a JSON body (none when `body` is undefined or null): the
// status and the answer's text.
async function exchange(base, token, method, pathAndQuery, body) {
  const hasBody = body !== undefined && body !== null
  const response = await directFetch(`${base}${pathAndQuery}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(hasBody ? { 'Content-Type': 'application/json' } : {}),
    },
    body: hasBody ? JSON.stringify(body) : undefined,
  })
  return { status: response.status, text: await response.text() }
}

// A request whatever its answer: the status and the JSON answer (null for an empty body).
async function send(base, token, method, pathAndQuery, body) {
  const { status, text } = await exchange(base, token, method, pathAndQuery, body)
  return { status, json: text ? JSON.parse(text) : null }
}

// A request that must succeed: the JSON answer.
async function call(base, token, method, pathAndQuery, body) {
  const { status, text } = await exchange(base, token, method, pathAndQuery, body)
  if (status < 200 || status > 299) throw new Error(`${method} ${pathAndQuery}: ${status} ${text}`)
  return text ? JSON.parse(text) : null
}

// Signs in as `credentials` ("user:password") on a device named `deviceName`: the token answer
// (access and refresh tokens).
async function signIn(base, credentials, deviceName) {
  const [username, password] = credentials.split(':')
  return call(base, '', 'POST', '/api/v1/auth/login', { username, password, device_name: deviceName })
}

// Signs the run's administrator (DIEMDANH_ADMIN, "user:password") in on a device named
// `deviceName`: the access token.
async function signInAdmin(base, deviceName) {
  return (await signIn(base, env('DIEMDANH_ADMIN'), deviceName)).access_token
}

async function login(base, username, password, deviceName) {
  const answer = await call(base, '', 'POST', '/api/v1/auth/login', {
    username,
    password,
    device_name: deviceName,
  })
  return answer.access_token
}

// A tablet's own WatermelonDB database (LokiJS in memory) of every synced table.
function localDatabase(name) {
  return new Database({
    adapter: new LokiJSAdapter({
      schema,
      dbName: name,
      useWebWorker: false,
      useIncrementalIndexedDB: true,
      extraLokiOptions: { autosave: false },
    }),
    modelClasses,
  })
}

// Every synced table of a database as { table: { id: columns } }, without WatermelonDB's own
// fields.
async function dumpTables(database) {
  const out = {}
  for (const table of SYNCED_TABLES) {
    out[table] = {}
    for (const record of await database.get(table).query().fetch()) {
      const { _status, _changed, id, ...columns } = record._raw
      out[table][id] = columns
    }
  }
  return out
}

async function tablet(base, username, password, name) {
  const token = await login(base, username, password, name)
  const database = localDatabase(name)
  const all = (table) => database.get(table).query().fetch()
  return {
    database,
    token,
    all,
    sync: (options = {}) =>
      syncWithDiemdanh({ database, baseUrl: base, auth: { getAccessToken: () => token }, ...options }),
    rows: async (table) => {
      const out = {}
      for (const record of await all(table)) {
        const { _status, _changed, id, ...columns } = record._raw
        out[id] = columns
      }
      return out
    },
  }
}

// Native pushes of a seeding device, 1000 mutations at a time.
async function nativePush(base, token, mutations) {
  for (let i = 0; i < mutations.length; i += 1000) {
    const answer = await call(base, token, 'POST', '/api/v1/sync/push', {
      mutations: mutations.slice(i, i + 1000),
    })
    const refused = answer.results.filter((r) => r.status === 'rejected')
    assert.equal(refused.length, 0, JSON.stringify(refused.slice(0, 3)))
  }
}

let counter = 0
function mutation(collection, fields, op = 'upsert', recordId = randomUUID()) {
  counter += 1
  return {
    mutation_id: randomUUID(),
    collection,
    record_id: recordId,
    op,
    fields,
    hlc: `${String(Date.now()).padStart(13, '0')}-${String(counter % 10000).padStart(4, '0')}-seed`,
  }
}

// A course with `people` trainees created and `sessions` sessions, a trainer of its own.
async function course(base, admin, tag, people, sessions) {
  const created = await call(base, admin, 'POST', '/api/v1/courses', {
    code: `DO-${tag}`,
    title: `Lớp đo ${tag}`,
    management_level: 'province',
    start_date: '2026-12-01',
    end_date: '2026-12-20',
  })
  const password = `${tag}-secret-pw`
  const user = await call(base, admin, 'POST', '/api/v1/users', {
    username: `trainer.${tag}`.toLowerCase(),
    role: 'trainer',
    password,
  })
  await call(base, admin, 'POST', '/api/v1/course-trainers', { course_id: created.id, user_id: user.id })
  const sessionIds = []
  for (let i = 0; i < sessions; i += 1) {
    const day = String(1 + (i % 20)).padStart(2, '0')
    const hour = String(1 + Math.floor(i / 20) * 3).padStart(2, '0')
    sessionIds.push(
      (
        await call(base, admin, 'POST', '/api/v1/sessions', {
          course_id: created.id,
          topic: `Buổi ${i + 1}`,
          starts_at: `2026-12-${day}T${hour}:00:00Z`,
          ends_at: `2026-12-${day}T${hour}:30:00Z`,
        })
      ).id,
    )
  }
  const personIds = []
  for (let i = 0; i < people; i += 1) {
    personIds.push(
      (
        await call(base, admin, 'POST', '/api/v1/people', {
          full_name: `Học viên ${tag} số ${i}`,
          position: 'secretary',
        })
      ).id,
    )
  }
  return { id: created.id, username: `trainer.${tag}`.toLowerCase(), password, sessionIds, personIds }
}

const STATUSES = ['present', 'late', 'absent', 'excused']


// A course of 400 trainees and 60 sessions, with what was on the server before a tablet's trip:
// 300 trainees enrolled and 20 sessions marked (pushed by another phone of the course's trainer).
async function seedMixed(base, admin) {
  const c = await course(base, admin, `M${Date.now().toString(36)}`, 400, 60)
  const seedToken = await login(base, c.username, c.password, 'seeding phone')
  const seeds = []
  for (const person of c.personIds.slice(0, 300)) {
    seeds.push(mutation('enrollments', { course_id: c.id, person_id: person, status: 'enrolled' }))
  }
  for (const session of c.sessionIds.slice(0, 20)) {
    for (const person of c.personIds.slice(0, 300)) {
      seeds.push(mutation('attendance', { session_id: session, person_id: person, status: 'present' }))
    }
  }
  await nativePush(base, seedToken, seeds)
  return c
}

// The trip, on a tablet that pulled the course: 100 trainees enrolled, 100 completed, 20
// removed; 3,000 marks changed, 1,000 deleted, and new marks of enrolled trainees up to `target`
// changed records in all. Answers the counts per table and kind.
async function tripOffline(device, c, target) {
  const attendance = await device.all('attendance')
  const enrollments = await device.all('enrollments')
  const changes = {
    enrollments: { created: 0, updated: 0, deleted: 0 },
    attendance: { created: 0, updated: 0, deleted: 0 },
  }
  const removedPeople = new Set(c.personIds.slice(280, 300))
  await device.database.write(async () => {
    const batch = []
    for (const person of c.personIds.slice(300, 400)) {
      batch.push(
        device.database.get('enrollments').prepareCreate((r) => {
          r._setRaw('course_id', c.id)
          r._setRaw('person_id', person)
          r._setRaw('status', 'enrolled')
        }),
      )
      changes.enrollments.created += 1
    }
    for (const enrollment of enrollments) {
      const person = enrollment._raw.person_id
      if (removedPeople.has(person)) {
        batch.push(enrollment.prepareMarkAsDeleted())
        changes.enrollments.deleted += 1
      } else if (changes.enrollments.updated < 100) {
        batch.push(enrollment.prepareUpdate((r) => r._setRaw('status', 'completed')))
        changes.enrollments.updated += 1
      }
    }
    const held = new Set()
    for (const [index, record] of attendance.entries()) {
      held.add(`${record._raw.session_id}/${record._raw.person_id}`)
      if (removedPeople.has(record._raw.person_id)) continue
      if (index % 6 === 0 && changes.attendance.deleted < 1000) {
        batch.push(record.prepareMarkAsDeleted())
        changes.attendance.deleted += 1
      } else if (changes.attendance.updated < 3000) {
        // Always another status than the stored one: an unchanged value is no change.
        const status = STATUSES[1 + (index % 3)] === record._raw.status ? 'present' : STATUSES[1 + (index % 3)]
        batch.push(record.prepareUpdate((r) => r._setRaw('status', status)))
        changes.attendance.updated += 1
      }
    }
    const creates = target - batch.length
    outer: for (const session of c.sessionIds) {
      for (const person of c.personIds) {
        if (changes.attendance.created >= creates) break outer
        if (removedPeople.has(person) || held.has(`${session}/${person}`)) continue
        batch.push(
          device.database.get('attendance').prepareCreate((r) => {
            r._setRaw('session_id', session)
            r._setRaw('person_id', person)
            r._setRaw('status', STATUSES[changes.attendance.created % 4])
            r._setRaw('note', changes.attendance.created % 10 === 0 ? 'đến muộn, có phép' : null)
          }),
        )
        changes.attendance.created += 1
      }
    }
    await device.database.batch(batch)
  })
  let pending = 0
  for (const table of ['attendance', 'enrollments']) {
    pending += (await device.all(table)).filter((r) => r._raw._status !== 'synced').length
    pending += (await device.database.adapter.getDeletedRecords(table)).length
  }
  assert.equal(pending, target, 'every change counted is pending on the tablet')
  return changes
}

// A tablet takes the roll of every session it holds offline: each enrolled (not withdrawn)
// person of the session's course marked in turn present, late, absent, excused, on the record
// it holds for the pair or a new one, in one batch. How many records it marked.
async function takeTheRollOffline(device) {
  const sessions = await device.all('sessions')
  const enrolled = (await device.all('enrollments')).filter((e) => e._raw.status !== 'withdrawn')
  const existing = new Map(
    (await device.all('attendance')).map((r) => [`${r._raw.session_id}/${r._raw.person_id}`, r]),
  )
  let marked = 0
  await device.database.write(async () => {
    const batch = []
    for (const session of sessions) {
      for (const enrollment of enrolled) {
        if (enrollment._raw.course_id !== session._raw.course_id) continue
        const status = STATUSES[marked % STATUSES.length]
        const record = existing.get(`${session.id}/${enrollment._raw.person_id}`)
        batch.push(
          record
            ? record.prepareUpdate((r) => r._setRaw('status', status))
            : device.database.get('attendance').prepareCreate((r) => {
                r._setRaw('session_id', session.id)
                r._setRaw('person_id', enrollment._raw.person_id)
                r._setRaw('status', status)
              }),
        )
        marked += 1
      }
    }
    await device.database.batch(batch)
  })
  return marked
}

// Every item of an administrator's list, page after page.
async function listAll(base, admin, pathAndQuery) {
  const items = []
  for (;;) {
    const page = await call(base, admin, 'GET', `${pathAndQuery}&limit=500&offset=${items.length}`)
    items.push(...page.items)
    if (items.length >= page.total || page.items.length === 0) return items
  }
}

// An attendance record of the API as a tablet's columns.
function attendanceColumns(item) {
  const { session_id, person_id, status, checked_in_at, note } = item
  return { session_id, person_id, status, checked_in_at, note }
}

// The server's attendance of the given sessions, as { id: columns } (an administrator's view).
async function serverAttendance(base, admin, sessions) {
  const out = {}
  for (const session of sessions) {
    for (const item of await listAll(base, admin, `/api/v1/attendance?session_id=${session}`)) {
      out[item.id] = attendanceColumns(item)
    }
  }
  return out
}

const sum = (changes) =>
  Object.values(changes)
    .flatMap((t) => Object.values(t))
    .reduce((a, b) => a + b, 0)

// The network between the tablets and the server, put in place of `fetch` (this file's seeding
// and administrators' calls go around it): counts the kit's pushes and pulls, and can lose the
// answer to the n-th push (`loseAnswerToPush`) after the server committed it, as a connection
// cut mid-sync does. `realFetch` goes around it.
function cuttableNetwork() {
  const realFetch = globalThis.fetch
  const network = { pushes: 0, pulls: 0, loseAnswerToPush: null, realFetch }
  globalThis.fetch = async (url, init) => {
    const isSync = String(url).includes('/api/v1/watermelon/sync')
    const isPush = isSync && init && init.method === 'POST'
    if (isPush) network.pushes += 1
    else if (isSync) network.pulls += 1
    const response = await realFetch(url, init)
    if (isPush && network.pushes === network.loseAnswerToPush) {
      await response.arrayBuffer()
      throw new TypeError('fetch failed: connection cut by the test')
    }
    return response
  }
  return network
}

// An environment variable the Rust driver sets (tests/it/watermelon.rs); the run fails without it.
function env(name) {
  const value = process.env[name]
  assert.ok(value, `${name} must be set (run through cargo test)`)
  return value
}

// WatermelonDB reports a server that sends a record the device has as `created` (or one it
// lacks as `updated`) through its logger: the messages are collected here, and a test fails
// when any was logged.
function collectSyncComplaints() {
  const complaints = []
  for (const method of ['error', 'warn']) {
    const original = console[method]
    console[method] = (...args) => {
      const text = args.map(String).join(' ')
      if (text.includes('[Sync]')) complaints.push(text)
      original(...args)
    }
  }
  return complaints
}

module.exports = {
  env,
  collectSyncComplaints,
  cuttableNetwork,
  send,
  call,
  signIn,
  signInAdmin,
  login,
  localDatabase,
  dumpTables,
  attendanceColumns,
  tablet,
  nativePush,
  mutation,
  course,
  seedMixed,
  tripOffline,
  takeTheRollOffline,
  serverAttendance,
  listAll,
  sum,
  STATUSES,
}
