// Sync by the native protocol (api-spec/sync.md): push the outbox first (so that nothing the
// user did is lost when the pull then removes a course they may no longer see: the server keeps
// what it refuses in quarantine), then pull page by page, each page stored with its cursor in
// one transaction.

import { ApiError, OfflineError } from '/shared/api.js';
import { codeText } from '/shared/i18n.js';
import { merge } from './hlc.js';
import { clearPulled, done, getMeta, setMeta, transaction } from './store.js';

/**
 * @typedef {import('/shared/api.js').Api} Api
 * @typedef {import('./model.js').Model} Model
 * @typedef {import('./model.js').OutboxEntry} OutboxEntry
 * @typedef {{state: 'idle'|'syncing'|'offline'|'signed_out'|'error', reason?: string,
 *   message?: string, lastSync?: number|null}} SyncStatus
 */

/** Most mutations in one push, and the most bytes (the server takes 1000 and 1 MiB). */
const BATCH_MUTATIONS = 1000;
const BATCH_BYTES = 900_000;
const PAGE_SIZE = 1000;
/** A course's roster changes rarely: fetched again after this long. */
const ROSTER_FRESH_MS = 10 * 60_000;

export class Sync {
  /**
   * @param {Api} api
   * @param {Model} model
   */
  constructor(api, model) {
    this.api = api;
    this.model = model;
    /** @type {SyncStatus} */
    this.status = { state: 'idle', lastSync: null };
    /** @type {Promise<void>|null} */
    this.running = null;
    /** @type {Set<(s: SyncStatus) => void>} */
    this.listeners = new Set();
    /**
     * No sync before this time (ms): the server answered 429 or 503 with Retry-After (a full
     * quarantine waits for an administrator). The outbox stays as it is meanwhile.
     */
    this.notBefore = 0;
  }

  async init() {
    this.status.lastSync = (await getMeta('lastSync')) || null;
  }

  /** @param {Partial<SyncStatus>} status */
  set(status) {
    this.status = { ...this.status, ...status };
    for (const listener of this.listeners) listener(this.status);
  }

  /** A sync, or the one already running. */
  now() {
    if (!this.running) {
      this.running = this.run().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  /**
   * After a new sign-in: a sync still running under the old tokens ends first (its 401 says
   * nothing about the new ones), then one runs under the new.
   */
  async afterSignIn() {
    await this.running;
    this.notBefore = 0;
    this.set({ state: 'idle', reason: undefined, message: undefined });
    return this.now();
  }

  async run() {
    const session = this.api.session;
    if (!session || Date.now() < this.notBefore) return;
    this.set({ state: 'syncing', reason: undefined, message: undefined });
    try {
      await this.push();
      await this.pull();
      await this.fetchRosters();
      const lastSync = Date.now();
      await setMeta('lastSync', lastSync);
      this.set({ state: 'idle', lastSync });
    } catch (e) {
      if (e instanceof OfflineError) this.set({ state: 'offline' });
      else if (e instanceof ApiError && e.signedOut) {
        // Refused tokens of a device replaced meanwhile (a new sign-in) are no news.
        if (this.api.session?.device_id === session.device_id) {
          this.set({ state: 'signed_out', reason: e.code, message: e.message });
        }
      }
      else if (e instanceof ApiError) {
        if (e.retryAfter) this.notBefore = Date.now() + e.retryAfter * 1000;
        this.set({ state: 'error', reason: e.code, message: codeText(e.code, e.message) });
      }
      else this.set({ state: 'error', reason: 'client_error', message: String(e) });
    }
  }

  /** The outbox entries this account may send, in the order they were made. */
  sendable() {
    const user = this.api.session?.user.id;
    return this.model.outbox.filter((entry) => entry.user_id === user);
  }

  async push() {
    for (;;) {
      const batch = nextBatch(this.sendable());
      if (batch.length === 0) {
        return;
      }
      const answer = await this.api.request('POST', '/api/v1/sync/push', {
        body: { mutations: batch.map(toMutation) },
      });
      await this.acknowledge(batch, answer);
    }
  }

  /**
   * A pushed batch leaves the outbox whatever each mutation's status: the pull brings the
   * merged state; a refused one is kept for the user to see, with the server's reason.
   * @param {OutboxEntry[]} batch
   * @param {{results: any[], server_hlc: string}} answer
   */
  async acknowledge(batch, answer) {
    const model = this.model;
    const clock = merge(model.clock, answer.server_hlc, Date.now());
    const aliases = { ...model.aliases };
    /** @type {import('./model.js').Refusal[]} */
    const refusals = [];
    answer.results.forEach((result, i) => {
      const entry = batch[i];
      if (result.merged_into && result.merged_into !== entry.record_id) {
        aliases[entry.record_id] = result.merged_into;
      }
      if (result.status === 'rejected') {
        refusals.push({
          mutation: entry,
          reason: result.reason,
          message: result.message,
          at: Date.now(),
          subject: model.subject(entry),
        });
      }
    });
    await transaction(['outbox', 'refused', 'meta'], 'readwrite', async (tx) => {
      for (const entry of batch) tx.objectStore('outbox').delete(/** @type {number} */ (entry.seq));
      for (const refusal of refusals) {
        refusal.seq = /** @type {number} */ (await done(tx.objectStore('refused').add(refusal)));
      }
      tx.objectStore('meta').put(clock, 'clock');
      tx.objectStore('meta').put(aliases, 'aliases');
    });
    const sent = new Set(batch.map((entry) => entry.seq));
    model.outbox = model.outbox.filter((entry) => !sent.has(entry.seq));
    model.refused.push(...refusals);
    model.aliases = aliases;
    model.clock = clock;
    model.changed();
  }

  async pull() {
    let cursor = await getMeta('cursor');
    for (;;) {
      let page;
      try {
        page = await this.api.request('GET', '/api/v1/sync/pull', {
          query: { cursor, limit: PAGE_SIZE },
        });
      } catch (e) {
        // The cursor is too old, or belongs to a role this account no longer has: the outbox
        // was pushed above, so starting over loses nothing.
        if (e instanceof ApiError && cursor && (e.status === 410 || e.code === 'invalid_cursor')) {
          await clearPulled();
          this.model.pulled = new Map();
          this.model.rosters = new Map();
          this.model.changed();
          cursor = undefined;
          continue;
        }
        throw e;
      }
      await this.apply(page.changes, page.cursor);
      cursor = page.cursor;
      if (!page.has_more) return;
    }
  }

  /**
   * One page and its cursor, stored together.
   * @param {any[]} changes
   * @param {string} cursor
   */
  async apply(changes, cursor) {
    await transaction(['records', 'meta'], 'readwrite', (tx) => {
      const records = tx.objectStore('records');
      for (const change of changes) {
        if (change.deleted) records.delete([change.collection, change.id]);
        else records.put({ c: change.collection, id: change.id, data: change.data });
      }
      tx.objectStore('meta').put(cursor, 'cursor');
    });
    for (const change of changes) {
      const records = this.model.collection(change.collection);
      if (change.deleted) records.delete(change.id);
      else records.set(change.id, change.data);
    }
    this.model.changed();
  }

  /**
   * A trainer keeps the roster of each of their courses, to add a cadre who came without being
   * enrolled while offline. Courses that left the scope lose theirs.
   */
  async fetchRosters() {
    const role = this.api.session?.user.role;
    if (role === 'trainee') return;
    const courses = this.model.courses().map((/** @type {any} */ c) => c.id);
    const fetched = [];
    for (const courseId of courses) {
      const kept = this.model.rosters.get(courseId);
      if (kept && Date.now() - kept.fetched_at < ROSTER_FRESH_MS) {
        fetched.push(kept);
        continue;
      }
      const items = [];
      for (let offset = 0; ; offset += 500) {
        const page = await this.api.request('GET', `/api/v1/courses/${courseId}/roster`, {
          query: { limit: 500, offset },
        });
        items.push(...page.items);
        if (items.length >= page.total || page.items.length === 0) break;
      }
      fetched.push({ course_id: courseId, items, fetched_at: Date.now() });
    }
    await transaction(['roster'], 'readwrite', (tx) => {
      const store = tx.objectStore('roster');
      store.clear();
      for (const roster of fetched) store.put(roster);
    });
    this.model.rosters = new Map(fetched.map((r) => [r.course_id, r]));
    this.model.changed();
  }

  /**
   * Forgets a refusal the user has seen.
   * @param {number} seq
   */
  async dismissRefusal(seq) {
    await transaction(['refused'], 'readwrite', (tx) => tx.objectStore('refused').delete(seq));
    this.model.refused = this.model.refused.filter((r) => r.seq !== seq);
    this.model.changed();
  }
}

/**
 * The next push: up to 1000 mutations in the order they were made, under the body limit.
 * @param {OutboxEntry[]} entries
 */
export function nextBatch(entries) {
  const batch = [];
  let bytes = 20;
  for (const entry of entries) {
    const size = JSON.stringify(toMutation(entry)).length * 3 + 1;
    if (batch.length === BATCH_MUTATIONS || (batch.length > 0 && bytes + size > BATCH_BYTES)) break;
    batch.push(entry);
    bytes += size;
  }
  return batch;
}

/**
 * The mutation exactly as it was made: a retry must send the same bytes' worth of meaning.
 * @param {OutboxEntry} entry
 */
function toMutation(entry) {
  /** @type {Record<string, any>} */
  const mutation = {
    mutation_id: entry.mutation_id,
    collection: entry.collection,
    record_id: entry.record_id,
    op: entry.op,
    hlc: entry.hlc,
  };
  if (entry.op === 'upsert') mutation.fields = entry.fields;
  return mutation;
}
