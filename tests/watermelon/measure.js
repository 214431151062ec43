// Prints what large WatermelonDB syncs cost, with the real @nozbe/watermelondb (LokiJS adapter
// in memory) and the shipped api-spec/watermelondb/sync.js against the release server binary:
//
//   - 1,035 changed records: trainer hoa.nguyen marks every session of both demo classes offline;
//   - 20,000 changed records across attendance and enrollments (creates, updates and deletes
//     mixed) on a tablet that first pulled its course, while another device keeps syncing;
//   - the first sync of a 50,000-record scope (in pages), and the same scope in one answer as a
//     kit without pages asks for it, to compare the server's memory;
//   - the sync of a tablet that pulled that course before its 50,000 marks were taken (an
//     incremental pull, in pages), and the same changes in one answer;
//   - the sync of a tablet of another trainer (tuan.le, who already synced the demo class)
//     assigned that course once it is full (its backfill, in pages), and the same in one answer.
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

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { isDeepStrictEqual } = require('node:util')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { SYNCED_TABLES } = require('../../api-spec/watermelondb/schema')
const {
  call, login, tablet, nativePush, mutation, course, seedMixed, tripOffline, takeTheRollOffline,
  serverAttendance, sum, STATUSES,
} = require('./support')

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

const traffic = { requests: 0, pushes: 0, sent: 0, received: 0 }
const realFetch = globalThis.fetch
globalThis.fetch = async (url, init = {}) => {
  traffic.requests += 1
  if (init.method === 'POST') traffic.pushes += 1
  if (typeof init.body === 'string') traffic.sent += Buffer.byteLength(init.body)
  const response = await realFetch(url, init)
  const body = Buffer.from(await response.arrayBuffer())
  traffic.received += body.length
  return new Response(body, { status: response.status, headers: response.headers })
}

async function measured(server, what, run) {
  resetPeak(server.child.pid)
  const rssBeforeKib = rss(server.child.pid).now
  const before = { ...traffic }
  const started = process.hrtime.bigint()
  const extra = await run()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  return {
    what,
    ms,
    requests: traffic.requests - before.requests,
    pushes: traffic.pushes - before.pushes,
    sent: traffic.sent - before.sent,
    received: traffic.received - before.received,
    peakRssKib: rss(server.child.pid).peak,
    rssBeforeKib,
    ...extra,
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async function demoBacklog(server) {
  const device = await tablet(server.base, 'hoa.nguyen', 'demo-trainer-1', 'measure-hoa')
  await device.sync()
  const marked = await takeTheRollOffline(device)
  const figures = await measured(server, `${marked} changed records (demo)`, async () => {
    await device.sync()
    return { clean: !(await hasUnsyncedChanges({ database: device.database })) }
  })
  return figures
}

async function mixedBacklog(server, admin, target) {
  const c = await seedMixed(server.base, admin)
  const device = await tablet(server.base, c.username, c.password, 'measure-mixed')
  await device.sync()
  const changes = await tripOffline(device, c, target)
  const total = sum(changes)

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
  const held = await serverAttendance(server.base, admin, c.sessionIds)
  figures.agrees =
    isDeepStrictEqual(await second.rows('attendance'), held) &&
    isDeepStrictEqual(await device.rows('attendance'), held) &&
    isDeepStrictEqual(await second.rows('enrollments'), await device.rows('enrollments'))
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
  // Two tablets that pulled the course before its marks were taken, away while they were: one
  // syncs with the kit (an incremental pull in pages), the other asks for them in one answer.
  const away = await tablet(server.base, c.username, c.password, 'measure-away')
  await away.sync()
  const awayToken = await login(server.base, c.username, c.password, 'measure-away-unpaged')
  const before = await call(server.base, awayToken, 'GET', '/api/v1/watermelon/sync?last_pulled_at=null')
  for (const session of c.sessionIds) {
    await nativePush(
      server.base,
      seedToken,
      c.personIds.map((person, i) =>
        mutation('attendance', { session_id: session, person_id: person, status: STATUSES[i % 4] }),
      ),
    )
  }
  // Another trainer's tablets, synced before the course is theirs, then assigned it.
  const assigned = await tablet(server.base, 'tuan.le', 'demo-trainer-2', 'measure-assigned')
  await assigned.sync()
  const assignedToken = await login(server.base, 'tuan.le', 'demo-trainer-2', 'measure-assigned-unpaged')
  const assignedBefore = await call(
    server.base,
    assignedToken,
    'GET',
    '/api/v1/watermelon/sync?last_pulled_at=null',
  )
  const tuan = await call(server.base, assignedToken, 'GET', '/api/v1/me')
  await call(server.base, admin, 'POST', '/api/v1/course-trainers', { course_id: c.id, user_id: tuan.id })
  const device = await tablet(server.base, c.username, c.password, 'measure-large')
  // A tablet's sync through the kit (in pages): the records it holds after.
  const syncInPages = (tablet) => async () => {
    await tablet.sync()
    let held = 0
    for (const table of SYNCED_TABLES) held += (await tablet.all(table)).length
    return { held }
  }
  // What changed since `lastPulledAt` in one answer, as a kit without pages asks for it: the
  // records it brings (a first pull's are all created).
  const pullWhole = (token, lastPulledAt) => async () => {
    const answer = await fetch(`${server.base}/api/v1/watermelon/sync?last_pulled_at=${lastPulledAt}`, {
      headers: { Authorization: `Bearer ${token}` },
    })
    const parsed = await answer.json()
    let held = 0
    for (const t of Object.values(parsed.changes)) held += t.created.length + t.updated.length
    return { held }
  }
  const paged = await measured(server, 'first sync in pages (the kit)', syncInPages(device))
  const incremental = await measured(server, 'sync of a tablet away meanwhile, in pages (the kit)', syncInPages(away))
  const backfill = await measured(server, 'sync of a tablet assigned the course later, in pages (the kit)', syncInPages(assigned))
  // The answers in one piece last: the allocator keeps what they took, and the measures after
  // them would start from there.
  const token = await login(server.base, c.username, c.password, 'measure-unpaged')
  const whole = await measured(server, 'first sync in one answer (no pages)', pullWhole(token, null))
  const incrementalWhole = await measured(server, 'the same changes in one answer (no pages)', pullWhole(awayToken, before.timestamp))
  const backfillWhole = await measured(
    server,
    'the course assigned later in one answer (no pages)',
    pullWhole(assignedToken, assignedBefore.timestamp),
  )
  return [paged, incremental, backfill, whole, incrementalWhole, backfillWhole]
}

// ---------------------------------------------------------------------------------------------

function show(figures) {
  const mib = (bytes) => (bytes / 1048576).toFixed(2)
  let line =
    `${figures.what}: ${(figures.ms / 1000).toFixed(2)} s, ${figures.requests} requests ` +
    `(${figures.pushes} pushes), ` +
    `${mib(figures.sent)} MiB sent, ${mib(figures.received)} MiB received, ` +
    `server peak RSS ${(figures.peakRssKib / 1024).toFixed(1)} MiB (${(figures.rssBeforeKib / 1024).toFixed(1)} MiB before)`
  if ('held' in figures) line += `, ${figures.held} records (on the device, or in the answer)`
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

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
