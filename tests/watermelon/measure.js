// Prints what large WatermelonDB syncs cost, with the real @nozbe/watermelondb (LokiJS adapter
// in memory) and the shipped api-spec/watermelondb/sync.js against the release server binary:
//
//   - 1,035 changed records: trainer hoa.nguyen marks every session of both demo classes offline;
//   - 20,000 changed records across attendance and enrollments (creates, updates and deletes
//     mixed) on a tablet that first pulled its course, while another device keeps syncing;
//   - the first sync of a 50,000-record scope (in pages), and the same scope in one answer as a
//     kit without pages asks for it, to compare the server's memory.
//
// For each: the time of the sync, the requests made, the bytes sent and received (bodies), and
// the server's peak RSS during it (VmHWM of the server process, reset before each measure
// through /proc/<pid>/clear_refs). Figures only: nothing is asserted beyond the sync succeeding
// and the devices agreeing with the server.
//
//   cargo build --release
//   (cd tests/watermelon && npm ci && node measure.js)
//   DIEMDANH_BIN=/path/to/diemdanh, DATABASE_URL=postgres://... (an empty database) to change.

'use strict'

const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomUUID } = require('node:crypto')
const { Database, Model } = require('@nozbe/watermelondb')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { schema, SYNCED_TABLES } = require('../../api-spec/watermelondb/schema')
const { syncWithDiemdanh } = require('../../api-spec/watermelondb/sync')

setGenerator(() => randomUUID())
const modelClasses = SYNCED_TABLES.map((table) => {
  const cls = class extends Model {}
  cls.table = table
  return cls
})

const BIN =
  process.env.DIEMDANH_BIN ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(__dirname, '../../target'), 'release/diemdanh')

// ---------------------------------------------------------------------------------------------
// The server and its memory
// ---------------------------------------------------------------------------------------------

async function startServer() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'diemdanh-measure-'))
  const child = spawn(
    BIN,
    ['--data-dir', dataDir, 'serve', '--demo', '--bind', '127.0.0.1:0', '--access-token-ttl-secs', '86400'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  const base = await new Promise((resolve, reject) => {
    let buffered = ''
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      const found = buffered.match(/listening on (\S+)/)
      if (found) resolve(found[1])
      if (buffered.length > 1 << 20) buffered = buffered.slice(-4096)
    })
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)))
  })
  return { child, base, dataDir }
}

const status = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8')
const kib = (text, field) => Number(text.match(new RegExp(`${field}:\\s+(\\d+) kB`))[1])
const resetPeak = (pid) => fs.writeFileSync(`/proc/${pid}/clear_refs`, '5')
const rss = (pid) => ({ now: kib(status(pid), 'VmRSS'), peak: kib(status(pid), 'VmHWM') })

// ---------------------------------------------------------------------------------------------
// The network: every request counted, with the bytes of its bodies
// ---------------------------------------------------------------------------------------------

const traffic = { requests: 0, sent: 0, received: 0 }
const realFetch = globalThis.fetch
globalThis.fetch = async (url, init = {}) => {
  traffic.requests += 1
  if (typeof init.body === 'string') traffic.sent += Buffer.byteLength(init.body)
  const response = await realFetch(url, init)
  const body = Buffer.from(await response.arrayBuffer())
  traffic.received += body.length
  return new Response(body, { status: response.status, headers: response.headers })
}

async function measured(server, what, run) {
  resetPeak(server.child.pid)
  const before = { ...traffic }
  const started = process.hrtime.bigint()
  const extra = await run()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  return {
    what,
    ms,
    requests: traffic.requests - before.requests,
    sent: traffic.sent - before.sent,
    received: traffic.received - before.received,
    peakRssKib: rss(server.child.pid).peak,
    ...extra,
  }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

async function call(base, token, method, pathAndQuery, body) {
  const response = await realFetch(`${base}${pathAndQuery}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`${method} ${pathAndQuery}: ${response.status} ${text}`)
  return text ? JSON.parse(text) : null
}

async function login(base, username, password, deviceName) {
  const answer = await call(base, '', 'POST', '/api/v1/auth/login', {
    username,
    password,
    device_name: deviceName,
  })
  return answer.access_token
}

async function tablet(base, username, password, name) {
  const token = await login(base, username, password, name)
  const database = new Database({
    adapter: new LokiJSAdapter({
      schema,
      dbName: name,
      useWebWorker: false,
      useIncrementalIndexedDB: true,
      extraLokiOptions: { autosave: false },
    }),
    modelClasses,
  })
  const all = (table) => database.get(table).query().fetch()
  return {
    database,
    all,
    sync: () => syncWithDiemdanh({ database, baseUrl: base, auth: { getAccessToken: () => token } }),
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

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async function demoBacklog(server) {
  const device = await tablet(server.base, 'hoa.nguyen', 'demo-trainer-1', 'measure-hoa')
  await device.sync()
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
        const status = STATUSES[marked % 4]
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
  const figures = await measured(server, `${marked} changed records (demo)`, async () => {
    await device.sync()
    return { clean: !(await hasUnsyncedChanges({ database: device.database })) }
  })
  return figures
}

async function mixedBacklog(server, admin, target) {
  const c = await course(server.base, admin, `M${Date.now().toString(36)}`, 400, 60)
  const seedToken = await login(server.base, c.username, c.password, 'seeding phone')
  // On the server before the tablet's trip: 300 trainees enrolled, 20 sessions marked.
  const enrollmentIds = new Map()
  const seeds = []
  for (const person of c.personIds.slice(0, 300)) {
    const m = mutation('enrollments', { course_id: c.id, person_id: person, status: 'enrolled' })
    enrollmentIds.set(person, m.record_id)
    seeds.push(m)
  }
  for (const session of c.sessionIds.slice(0, 20)) {
    for (const person of c.personIds.slice(0, 300)) {
      seeds.push(mutation('attendance', { session_id: session, person_id: person, status: 'present' }))
    }
  }
  await nativePush(server.base, seedToken, seeds)

  const device = await tablet(server.base, c.username, c.password, 'measure-mixed')
  await device.sync()
  const attendance = await device.all('attendance')
  const enrollments = await device.all('enrollments')
  // The trip: 100 trainees enrolled, 100 completed, 20 removed; 3,000 marks changed, 1,000
  // deleted, the rest new marks of every enrolled trainee.
  const changes = { enrollments: { created: 0, updated: 0, deleted: 0 }, attendance: { created: 0, updated: 0, deleted: 0 } }
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
        batch.push(record.prepareUpdate((r) => r._setRaw('status', STATUSES[index % 4])))
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
  const total = Object.values(changes)
    .flatMap((t) => Object.values(t))
    .reduce((a, b) => a + b, 0)

  // Meanwhile another trainer's phone keeps syncing (incremental WatermelonDB pulls).
  const other = await login(server.base, 'tuan.le', 'demo-trainer-2', 'measure-other')
  const first = await call(server.base, other, 'GET', '/api/v1/watermelon/sync?last_pulled_at=null')
  let stop = false
  const latencies = []
  const neighbour = (async () => {
    while (!stop) {
      const started = process.hrtime.bigint()
      await call(server.base, other, 'GET', `/api/v1/watermelon/sync?last_pulled_at=${first.timestamp}`)
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  const figures = await measured(server, `${total} changed records (mixed)`, async () => {
    await device.sync()
    return { clean: !(await hasUnsyncedChanges({ database: device.database })) }
  })
  stop = true
  await neighbour
  latencies.sort((a, b) => a - b)
  figures.neighbour = {
    syncs: latencies.length,
    p50: latencies[Math.floor(latencies.length / 2)],
    max: latencies[latencies.length - 1],
  }
  figures.changes = changes

  // A second tablet of the trainer pulls the course: it must hold what the first one holds.
  const second = await tablet(server.base, c.username, c.password, 'measure-mixed-2')
  await second.sync()
  await device.sync()
  figures.agrees =
    JSON.stringify(await second.rows('attendance')) === JSON.stringify(await device.rows('attendance')) &&
    JSON.stringify(await second.rows('enrollments')) === JSON.stringify(await device.rows('enrollments'))
  return figures
}

async function largeScope(server, admin, records) {
  const people = 1000
  const sessions = Math.ceil((records - 2 * people) / people)
  const c = await course(server.base, admin, `L${Date.now().toString(36)}`, people, sessions)
  const seedToken = await login(server.base, c.username, c.password, 'seeding phone')
  const seeds = c.personIds.map((person) =>
    mutation('enrollments', { course_id: c.id, person_id: person, status: 'enrolled' }),
  )
  await nativePush(server.base, seedToken, seeds)
  for (const session of c.sessionIds) {
    await nativePush(
      server.base,
      seedToken,
      c.personIds.map((person, i) =>
        mutation('attendance', { session_id: session, person_id: person, status: STATUSES[i % 4] }),
      ),
    )
  }
  const device = await tablet(server.base, c.username, c.password, 'measure-large')
  const paged = await measured(server, 'first sync in pages (the kit)', async () => {
    await device.sync()
    let held = 0
    for (const table of SYNCED_TABLES) held += (await device.all(table)).length
    return { held }
  })
  const token = await login(server.base, c.username, c.password, 'measure-unpaged')
  const whole = await measured(server, 'first sync in one answer (no pages)', async () => {
    const answer = await fetch(`${server.base}/api/v1/watermelon/sync?last_pulled_at=null`, {
      headers: { Authorization: `Bearer ${token}` },
    })
    const parsed = await answer.json()
    let held = 0
    for (const t of Object.values(parsed.changes)) held += t.created.length
    return { held }
  })
  return [paged, whole]
}

// ---------------------------------------------------------------------------------------------

function show(figures) {
  const mib = (bytes) => (bytes / 1048576).toFixed(2)
  let line =
    `${figures.what}: ${(figures.ms / 1000).toFixed(2)} s, ${figures.requests} requests, ` +
    `${mib(figures.sent)} MiB sent, ${mib(figures.received)} MiB received, ` +
    `server peak RSS ${(figures.peakRssKib / 1024).toFixed(1)} MiB`
  if ('held' in figures) line += `, ${figures.held} records on the device`
  if ('clean' in figures) line += figures.clean ? ', nothing left dirty' : ', CHANGES LEFT DIRTY'
  if (figures.neighbour) {
    const n = figures.neighbour
    line += `; another phone's ${n.syncs} syncs meanwhile: p50 ${n.p50.toFixed(1)} ms, max ${n.max.toFixed(1)} ms`
  }
  if ('agrees' in figures) line += figures.agrees ? '; a second tablet agrees' : '; SECOND TABLET DIFFERS'
  console.log(line)
  if (figures.changes) console.log(`  changes: ${JSON.stringify(figures.changes)}`)
}

async function main() {
  const server = await startServer()
  try {
    const backend = process.env.DATABASE_URL ? 'PostgreSQL' : 'SQLite'
    console.log(`server ${BIN} (${backend}), idle RSS ${(rss(server.child.pid).now / 1024).toFixed(1)} MiB`)
    const admin = await login(server.base, 'admin', 'diemdanh-admin', 'measure admin')
    show(await demoBacklog(server))
    show(await mixedBacklog(server, admin, Number(process.env.MEASURE_RECORDS || 20000)))
    for (const figures of await largeScope(server, admin, Number(process.env.MEASURE_SCOPE || 50000))) {
      show(figures)
    }
  } finally {
    server.child.kill('SIGTERM')
    fs.rmSync(server.dataDir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
