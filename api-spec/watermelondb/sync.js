// Wiring WatermelonDB's synchronize() to diemdanh (see README.md in this folder).
//
//   const { syncWithDiemdanh } = require('./sync')
//   await syncWithDiemdanh({ database, baseUrl: 'https://diemdanh.example.vn', auth })
//
// Record ids must be UUIDs: once at start-up, before creating any record,
//   const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
//   setGenerator(() => crypto.randomUUID())   // or uuid's v4() on React Native
//
// `auth` holds the tokens of POST /api/v1/auth/login (one login per device: the server knows
// the device from its token):
//   - getAccessToken(): the current access token (a string, or a promise of one);
//   - refresh(): called once when the server answers 401 `token_expired`; it must call
//     POST /api/v1/auth/refresh with the stored refresh token, store BOTH new tokens (the old
//     refresh token stops working: reusing it signs the device out) and return the new access
//     token. Any other 401 (`device_revoked`, `account_disabled`, ...) means signing in again.
//
// Errors are thrown as DiemdanhSyncError with the server's `status` and `code`. Two need the
// app's attention:
//   - 410 `resync_required`: the server cannot continue from this device's last pull (it is
//     older than the deletion history kept, the account's role changed, the server's database
//     was restored from a backup since, or the timestamp is unknown). The pending changes were
//     pushed before the pull (a push is accepted whatever the timestamp's epoch). Push what
//     you can't lose first, then `database.unsafeResetDatabase()` inside
//     `database.write()` and sync again: the first sync brings the whole scope.
//   - 503 `service_unavailable`: nothing was committed; sync again later (respect Retry-After).
//   - 429 `quarantine_full`: the device has as many refused changes waiting for an administrator
//     as the server keeps per device; nothing of the page was committed (pages before it were).
//     Sync again after `error.retryAfter` seconds; tell the user an administrator must look at
//     the refused changes.
// Nothing is lost on any error: WatermelonDB keeps local changes until a push succeeds.
//
// What this adds to WatermelonDB's synchronize() (which pulls first, then pushes everything in
// one request):
//   - push before pull: pending changes are pushed first, so that a pull that removes records
//     (a course leaving the trainer's scope) cannot destroy edits the server never saw; the
//     server answers them (and quarantines what the trainer may no longer write);
//   - pages: changes go in pages the server takes in one request (at most PAGE_RECORDS records
//     and PAGE_BYTES bytes), each marked synced once the server has committed it, so a backlog
//     of any size gets through and a cut sync resumes where it stopped (a page whose answer was
//     lost is answered again, not applied twice: the server knows it until the device pulls);
//   - a pull comes in pages (PULL_PAGE changes each: a first sync, a device away while much
//     changed, or a course newly assigned to the trainer) gathered here and handed to
//     WatermelonDB as one pull, so the server never holds a whole scope, a long absence's
//     changes or a whole course at once.

const { synchronize } = require('@nozbe/watermelondb/sync')
// synchronize()'s own steps, to push in pages before it pulls. They are not WatermelonDB's
// documented API: this file is tested with the version in tests/watermelon/package.json.
const {
  fetchLocalChanges,
  markLocalChangesAsSynced,
  getLastPulledAt,
} = require('@nozbe/watermelondb/sync/impl')
const { SYNCED_TABLES } = require('./schema')

const SYNC_PATH = '/api/v1/watermelon/sync'
// The server takes at most 1000 records and 1 MiB per push; smaller pages also keep each write
// short, so that other devices' syncs are answered in between.
const PAGE_RECORDS = 500
const PAGE_BYTES = 512 * 1024
// Changes per page of a pull (the server's most).
const PULL_PAGE = 1000

class DiemdanhSyncError extends Error {
  // retryAfter: the seconds of the answer's Retry-After (429, 503), or undefined.
  constructor(status, body, retryAfter) {
    super(`diemdanh answered ${status} ${body && body.code}: ${body && body.message}`)
    this.name = 'DiemdanhSyncError'
    this.status = status
    this.code = body && body.code
    this.body = body
    this.retryAfter = retryAfter
  }
}

// One request with the bearer token; refreshes the token once on 401 `token_expired`.
async function request(baseUrl, auth, method, path, body) {
  const text = body === undefined ? undefined : JSON.stringify(body)
  const send = async (token) =>
    fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json',
        ...(text === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: text,
    })
  let response = await send(await auth.getAccessToken())
  let answer = await response.json().catch(() => null)
  if (response.status === 401 && answer && answer.code === 'token_expired' && auth.refresh) {
    response = await send(await auth.refresh())
    answer = await response.json().catch(() => null)
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('Retry-After')) || undefined
    throw new DiemdanhSyncError(response.status, answer, retryAfter)
  }
  return answer
}

// The length of a string in UTF-8 bytes.
function utf8Length(text) {
  let bytes = 0
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code < 0xdc00) {
      bytes += 4
      i += 1
    } else bytes += 3
  }
  return bytes
}

// The synced tables' changes, in pages the server takes in one request each. Tables go in the
// order of schema.js (enrollments before the attendance they allow); the app's own tables are
// not sent (the server would refuse them).
function pagesOf(changes) {
  const pages = []
  let page = null
  let records = 0
  let bytes = 0
  for (const table of SYNCED_TABLES) {
    const tableChanges = changes[table]
    if (!tableChanges) continue
    for (const kind of ['created', 'updated', 'deleted']) {
      for (const item of tableChanges[kind]) {
        const size = utf8Length(JSON.stringify(item)) + 1
        if (!page || records === PAGE_RECORDS || bytes + size > PAGE_BYTES) {
          page = {}
          pages.push(page)
          records = 0
          bytes = 2
        }
        if (!page[table]) {
          page[table] = { created: [], updated: [], deleted: [] }
          bytes += table.length + 48
        }
        page[table][kind].push(item)
        records += 1
        bytes += size
      }
    }
  }
  return pages
}

// Runs one WatermelonDB sync against diemdanh.
//   onRejected(reasons): called once at the end of a sync when the server refused records,
//     with { table: { id: { reason, message } } }. Refused records stay unsynced on the device
//     (they are sent again with every sync, answered the same way without being filed twice)
//     and are in the administrators' quarantine; show them to the user to fix or discard.
//   log: WatermelonDB's sync log object, if you want one.
//   Any other option is passed to synchronize() (e.g. conflictResolver, migrationsEnabledAtVersion).
async function syncWithDiemdanh({ database, baseUrl, auth, onRejected, log, ...options }) {
  const rejected = {}
  const pushPage = async (page, lastPulledAt) => {
    const answer = await request(
      baseUrl,
      auth,
      'POST',
      `${SYNC_PATH}?last_pulled_at=${lastPulledAt}`,
      page,
    )
    for (const [table, reasons] of Object.entries(answer.rejected_reasons)) {
      rejected[table] = { ...rejected[table], ...reasons }
    }
    return answer.experimentalRejectedIds
  }
  try {
    await pushBacklog(database, pushPage)
    await synchronize({
      database,
      log,
      ...options,
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
        const get = (query) => request(baseUrl, auth, 'GET', `${SYNC_PATH}?${query}`)
        if (migration) {
          // After a schema migration the answer comes at once (it carries whole tables).
          const query = new URLSearchParams({
            last_pulled_at: String(lastPulledAt || null),
            schema_version: String(schemaVersion),
            migration: JSON.stringify(migration),
          })
          const answer = await get(query)
          return { changes: answer.changes, timestamp: answer.timestamp }
        }
        return pullPages(get, lastPulledAt, schemaVersion)
      },
      // What changed during the pull (and refused records, sent again): WatermelonDB marks
      // it synced once every page is accepted.
      pushChanges: async ({ changes, lastPulledAt }) => {
        const experimentalRejectedIds = {}
        for (const page of pagesOf(changes)) {
          const ids = await pushPage(page, lastPulledAt)
          for (const [table, list] of Object.entries(ids)) {
            experimentalRejectedIds[table] = (experimentalRejectedIds[table] || []).concat(list)
          }
        }
        return { experimentalRejectedIds }
      },
    })
  } finally {
    if (onRejected && Object.keys(rejected).length > 0) onRejected(rejected)
  }
}

// Pushes every pending change before the pull, page by page, each page marked synced (refused
// records stay pending) as soon as the server has committed it. A device that never pulled
// has nothing the server gave it to lose, and its first pull names no timestamp to push after.
async function pushBacklog(database, pushPage) {
  const lastPulledAt = await getLastPulledAt(database)
  if (!lastPulledAt) return
  const local = await fetchLocalChanges(database)
  const pages = pagesOf(local.changes)
  if (pages.length === 0) return
  const records = new Map(local.affectedRecords.map((r) => [`${r.table}#${r.id}`, r]))
  for (const page of pages) {
    const rejectedIds = await pushPage(page, lastPulledAt)
    const affectedRecords = []
    for (const [table, { created, updated }] of Object.entries(page)) {
      for (const raw of created.concat(updated)) affectedRecords.push(records.get(`${table}#${raw.id}`))
    }
    // Records changed again while the page travelled stay pending (WatermelonDB compares them).
    await markLocalChangesAsSynced(database, { changes: page, affectedRecords }, rejectedIds)
  }
}

// A pull, page by page, the pages gathered into one WatermelonDB pull: a record sent again keeps
// its last state, and stays `created` if an earlier page created it (the device did not hold
// it); a deletion removes what an earlier page sent, a later page's record undoes a deletion.
// A pull cut between pages starts over: the server records it only when the last page is sent.
async function pullPages(get, lastPulledAt, schemaVersion) {
  const gathered = {}
  let cursor = null
  for (;;) {
    const query = new URLSearchParams({
      last_pulled_at: String(lastPulledAt || null),
      schema_version: String(schemaVersion),
      limit: String(PULL_PAGE),
    })
    if (cursor) query.set('cursor', cursor)
    const page = await get(query)
    for (const [table, { created, updated, deleted }] of Object.entries(page.changes)) {
      if (!gathered[table]) gathered[table] = new Map()
      const into = gathered[table]
      for (const [kind, raws] of [['created', created], ['updated', updated]]) {
        for (const raw of raws) {
          const earlier = into.get(raw.id)
          const kept = earlier && earlier.kind !== 'deleted' ? earlier.kind : kind
          into.set(raw.id, { kind: kept, raw })
        }
      }
      for (const id of deleted) into.set(id, { kind: 'deleted' })
    }
    if (!page.has_more) {
      const changes = {}
      for (const [table, records] of Object.entries(gathered)) {
        changes[table] = { created: [], updated: [], deleted: [] }
        for (const [id, { kind, raw }] of records) {
          changes[table][kind].push(kind === 'deleted' ? id : raw)
        }
      }
      // `timestamp` is a server revision, not a time: store and send it back, never compare
      // it with a clock.
      return { changes, timestamp: page.timestamp }
    }
    cursor = page.cursor
  }
}

module.exports = { syncWithDiemdanh, DiemdanhSyncError }
