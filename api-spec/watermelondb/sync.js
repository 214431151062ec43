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
//     older than the deletion history kept, the account's role changed, or the timestamp is
//     unknown). Push what you can't lose first, then `database.unsafeResetDatabase()` inside
//     `database.write()` and sync again: the first sync brings the whole scope.
//   - 503 `service_unavailable`: nothing was committed; sync again later (respect Retry-After).
// Nothing is lost on any error: WatermelonDB keeps local changes until a push succeeds.

const { synchronize } = require('@nozbe/watermelondb/sync')
const { SYNCED_TABLES } = require('./schema')

const SYNC_PATH = '/api/v1/watermelon/sync'

class DiemdanhSyncError extends Error {
  constructor(status, body) {
    super(`diemdanh answered ${status} ${body && body.code}: ${body && body.message}`)
    this.name = 'DiemdanhSyncError'
    this.status = status
    this.code = body && body.code
    this.body = body
  }
}

// One request with the bearer token; refreshes the token once on 401 `token_expired`.
async function request(baseUrl, auth, method, path, body) {
  const send = async (token) =>
    fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  let response = await send(await auth.getAccessToken())
  let answer = await response.json().catch(() => null)
  if (response.status === 401 && answer && answer.code === 'token_expired' && auth.refresh) {
    response = await send(await auth.refresh())
    answer = await response.json().catch(() => null)
  }
  if (!response.ok) {
    throw new DiemdanhSyncError(response.status, answer)
  }
  return answer
}

// Runs one WatermelonDB sync against diemdanh.
//   onRejected(reasons): called when the server refused records, with
//     { table: { id: { reason, message } } }. Refused records stay unsynced on the device (they
//     are sent again with every sync, answered the same way without being filed twice) and are
//     in the administrators' quarantine; show them to the user to fix or discard.
//   log: WatermelonDB's sync log object, if you want one.
//   Any other option is passed to synchronize() (e.g. conflictResolver, migrationsEnabledAtVersion).
async function syncWithDiemdanh({ database, baseUrl, auth, onRejected, log, ...options }) {
  await synchronize({
    database,
    log,
    ...options,
    pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
      const query = new URLSearchParams({
        last_pulled_at: lastPulledAt ? String(lastPulledAt) : 'null',
        schema_version: String(schemaVersion),
        migration: JSON.stringify(migration || null),
      })
      const answer = await request(baseUrl, auth, 'GET', `${SYNC_PATH}?${query}`)
      // `timestamp` is a server revision, not a time: store and send it back, never compare it
      // with a clock.
      return { changes: answer.changes, timestamp: answer.timestamp }
    },
    pushChanges: async ({ changes, lastPulledAt }) => {
      // Tables of the app's own (not synced) are not sent: the server would refuse them.
      const synced = {}
      for (const table of SYNCED_TABLES) {
        if (changes[table]) synced[table] = changes[table]
      }
      const answer = await request(
        baseUrl,
        auth,
        'POST',
        `${SYNC_PATH}?last_pulled_at=${lastPulledAt}`,
        synced,
      )
      if (onRejected && Object.keys(answer.experimentalRejectedIds).length > 0) {
        onRejected(answer.rejected_reasons)
      }
      return { experimentalRejectedIds: answer.experimentalRejectedIds }
    },
  })
}

module.exports = { syncWithDiemdanh, DiemdanhSyncError }
