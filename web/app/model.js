// What the screens show: the records the server sent with the user's unsent changes laid on
// top (api-spec/sync.md, "Local state"), and the one way a change is made: stamped by the
// clock, written to the outbox in the same transaction, shown at once.

import { fold, personSortKey } from '/shared/fold.js';
import { stamp } from './hlc.js';
import { all, done, getMeta, transaction } from './store.js';

/**
 * @typedef {{seq?: number, mutation_id: string, collection: string, record_id: string,
 *   op: 'upsert'|'delete', fields?: Record<string, any>, hlc: string, user_id: string,
 *   made_at: number}} OutboxEntry
 * @typedef {{seq?: number, mutation: OutboxEntry, reason: string, message: string, at: number,
 *   subject?: {person: string, place: string}}} Refusal
 * @typedef {{id: string, full_name: string, position: string, unit_id: string|null}} RosterEntry
 * @typedef {{course_id: string, items: RosterEntry[], fetched_at: number}} Roster
 */

/** A UUID v4, also where `crypto.randomUUID` is missing (a page not served over HTTPS). */
export function newId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Model {
  constructor() {
    /** @type {Map<string, Map<string, any>>} */
    this.pulled = new Map();
    /** @type {OutboxEntry[]} */
    this.outbox = [];
    /** @type {Refusal[]} */
    this.refused = [];
    /** @type {Record<string, string>} record ids the server merged into others */
    this.aliases = {};
    /** @type {Map<string, Roster>} */
    this.rosters = new Map();
    /** @type {{l: number, c: number}} */
    this.clock = { l: 0, c: 0 };
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    /** @type {Map<string, Map<string, any>>} */
    this.views = new Map();
    /** @type {Map<string, any>} */
    this.memo = new Map();
    /** @type {string|null} the signed-in account: only its unsent changes are shown */
    this.userId = null;
  }

  async load() {
    const [records, outbox, refused, rosters] = await Promise.all([
      all('records'),
      all('outbox'),
      all('refused'),
      all('roster'),
    ]);
    this.pulled = new Map();
    for (const { c, id, data } of records) this.collection(c).set(id, data);
    this.outbox = outbox;
    this.refused = refused;
    this.rosters = new Map(rosters.map((r) => [r.course_id, r]));
    this.aliases = (await getMeta('aliases')) || {};
    this.clock = (await getMeta('clock')) || { l: 0, c: 0 };
    this.changed();
  }

  /** @param {() => void} listener */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed() {
    this.views.clear();
    this.memo.clear();
    for (const listener of this.listeners) listener();
  }

  /** @param {string} name */
  collection(name) {
    let records = this.pulled.get(name);
    if (!records) {
      records = new Map();
      this.pulled.set(name, records);
    }
    return records;
  }

  /**
   * The records of a collection as the user sees them: pulled, with pending changes on top.
   * @param {string} name
   * @returns {Map<string, any>}
   */
  view(name) {
    let view = this.views.get(name);
    if (view) return view;
    view = new Map(this.collection(name));
    for (const entry of this.outbox) {
      if (entry.collection !== name || entry.user_id !== this.userId) continue;
      const id = this.aliases[entry.record_id] || entry.record_id;
      if (entry.op === 'delete') {
        view.delete(id);
      } else {
        const base = view.get(id) || { id };
        view.set(id, { ...base, ...entry.fields, pending: true });
      }
    }
    this.views.set(name, view);
    return view;
  }

  /**
   * A derived value, computed once per change of the model.
   * @template T
   * @param {string} key
   * @param {() => T} compute
   * @returns {T}
   */
  derive(key, compute) {
    if (!this.memo.has(key)) this.memo.set(key, compute());
    return this.memo.get(key);
  }

  /** @param {string} id */
  person(id) {
    const person = this.view('people').get(id);
    if (person) return person;
    for (const roster of this.rosters.values()) {
      const entry = roster.items.find((p) => p.id === id);
      if (entry) return entry;
    }
    return null;
  }

  /** @param {string|null|undefined} id */
  unitName(id) {
    return (id && this.view('units').get(id)?.name) || '';
  }

  courses() {
    return this.derive('courses', () =>
      [...this.view('courses').values()].sort(
        (a, b) => a.start_date.localeCompare(b.start_date) || a.title.localeCompare(b.title, 'vi'),
      ),
    );
  }

  /**
   * A course's sessions, today's first, then the coming ones, then the past (latest first).
   * @param {string} courseId
   * @param {Date} now
   */
  sessionsOf(courseId, now = new Date()) {
    const today = localDay(now);
    const sessions = [...this.view('sessions').values()].filter((s) => s.course_id === courseId);
    const rank = (/** @type {any} */ s) => {
      const day = localDay(new Date(s.starts_at));
      return day === today ? 0 : day > today ? 1 : 2;
    };
    return sessions.sort((a, b) => {
      const ra = rank(a);
      const rb = rank(b);
      if (ra !== rb) return ra - rb;
      return ra === 2 ? b.starts_at.localeCompare(a.starts_at) : a.starts_at.localeCompare(b.starts_at);
    });
  }

  /** @param {string} courseId */
  enrollmentsOf(courseId) {
    return this.derive(`enrollments:${courseId}`, () =>
      [...this.view('enrollments').values()].filter((e) => e.course_id === courseId),
    );
  }

  /**
   * Everyone enrolled (not withdrawn) in a course, in roster order, with the folded name for
   * search.
   * @param {string} courseId
   */
  trainees(courseId) {
    return this.derive(`trainees:${courseId}`, () => {
      const people = [];
      for (const enrollment of this.enrollmentsOf(courseId)) {
        if (enrollment.status === 'withdrawn') continue;
        const person = this.person(enrollment.person_id);
        if (!person) continue;
        people.push({
          person,
          folded: fold(person.full_name),
          sortKey: personSortKey(person.full_name),
        });
      }
      return people.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    });
  }

  /**
   * The attendance of a session, by person.
   * @param {string} sessionId
   * @returns {Map<string, any>}
   */
  attendanceOf(sessionId) {
    return this.derive(`attendance:${sessionId}`, () => {
      const byPerson = new Map();
      for (const record of this.view('attendance').values()) {
        if (record.session_id === sessionId) byPerson.set(record.person_id, record);
      }
      return byPerson;
    });
  }

  /** @param {string} courseId */
  materialsOf(courseId) {
    return [...this.view('materials').values()]
      .filter((m) => m.course_id === courseId)
      .sort((a, b) => a.title.localeCompare(b.title, 'vi'));
  }

  /**
   * Who and where a change is about, in words kept with it: a refused change stays readable
   * after its class has left the device.
   * @param {OutboxEntry} entry
   * @returns {{person: string, place: string}}
   */
  subject(entry) {
    const fields = entry.fields || {};
    const collection = entry.collection === 'enrollments' ? 'enrollments' : 'attendance';
    const record = this.view(collection).get(this.aliases[entry.record_id] || entry.record_id) || {};
    const person = this.person(fields.person_id || record.person_id);
    const place =
      collection === 'enrollments'
        ? this.view('courses').get(fields.course_id || record.course_id)?.title
        : this.view('sessions').get(fields.session_id || record.session_id)?.topic;
    return { person: person?.full_name || '?', place: place || '?' };
  }

  /**
   * Makes a change: stamped now, in the outbox durably before it is shown.
   * @param {string} userId
   * @param {string} deviceId
   * @param {string} collection
   * @param {string} recordId
   * @param {'upsert'|'delete'} op
   * @param {Record<string, any>} [fields]
   */
  async change(userId, deviceId, collection, recordId, op, fields) {
    const { clock, stamp: hlc } = stamp(this.clock, Date.now(), deviceId);
    /** @type {OutboxEntry} */
    const entry = {
      mutation_id: newId(),
      collection,
      record_id: recordId,
      op,
      hlc,
      user_id: userId,
      made_at: Date.now(),
    };
    if (op === 'upsert') entry.fields = fields;
    await transaction(['outbox', 'meta'], 'readwrite', async (tx) => {
      entry.seq = /** @type {number} */ (await done(tx.objectStore('outbox').add(entry)));
      tx.objectStore('meta').put(clock, 'clock');
    });
    this.clock = clock;
    this.outbox.push(entry);
    this.changed();
    return entry;
  }

  /**
   * Marks a person at a session: a new record or a change of the one there is.
   * @param {{userId: string, deviceId: string}} who
   * @param {string} sessionId
   * @param {string} personId
   * @param {string} status
   */
  async mark(who, sessionId, personId, status) {
    const existing = this.attendanceOf(sessionId).get(personId);
    const arrived = status === 'present' || status === 'late';
    /** @type {Record<string, any>} */
    const fields = { status };
    if (!arrived) fields.checked_in_at = null;
    else if (!existing?.checked_in_at) fields.checked_in_at = new Date().toISOString();
    if (existing) {
      return this.change(who.userId, who.deviceId, 'attendance', existing.id, 'upsert', fields);
    }
    return this.change(who.userId, who.deviceId, 'attendance', newId(), 'upsert', {
      session_id: sessionId,
      person_id: personId,
      ...fields,
    });
  }

  /**
   * Changes the note or the check-in time of a mark; only what differs is sent.
   * @param {{userId: string, deviceId: string}} who
   * @param {string} sessionId
   * @param {string} personId
   * @param {{note: string|null, checked_in_at?: string|null}} details
   */
  async details(who, sessionId, personId, details) {
    const existing = this.attendanceOf(sessionId).get(personId);
    if (!existing) return null;
    /** @type {Record<string, any>} */
    const fields = {};
    const note = details.note ? details.note.normalize('NFC').trim() || null : null;
    if (note !== (existing.note ?? null)) fields.note = note;
    if (details.checked_in_at !== undefined && details.checked_in_at !== (existing.checked_in_at ?? null)) {
      fields.checked_in_at = details.checked_in_at;
    }
    if (Object.keys(fields).length === 0) return null;
    return this.change(who.userId, who.deviceId, 'attendance', existing.id, 'upsert', fields);
  }

  /**
   * Enrolls a person of the roster who came without being enrolled (or comes back after
   * withdrawing).
   * @param {{userId: string, deviceId: string}} who
   * @param {string} courseId
   * @param {string} personId
   */
  async enroll(who, courseId, personId) {
    const existing = this.enrollmentsOf(courseId).find((e) => e.person_id === personId);
    if (existing) {
      if (existing.status === 'withdrawn') {
        await this.change(who.userId, who.deviceId, 'enrollments', existing.id, 'upsert', {
          status: 'enrolled',
        });
      }
      return;
    }
    await this.change(who.userId, who.deviceId, 'enrollments', newId(), 'upsert', {
      course_id: courseId,
      person_id: personId,
      status: 'enrolled',
    });
  }
}

/** @param {Date} date */
export function localDay(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
}
