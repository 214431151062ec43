// Sync review: the conflict log (the losing and the winning value side by side, who and which
// device wrote each, resolved by choosing one) and the quarantine (what the server refused and
// why; re-applied, possibly with corrected fields, or dismissed).

import { h, replace } from '/shared/dom.js';
import { formatDateTime, t } from '/shared/i18n.js';
import { all, errorBox, errorText, loading, section } from './ui.js';

/** @typedef {import('./main.js').Context} Context */

/**
 * Who stands behind a stamp: its node is the device id (the server puts it there).
 * @typedef {{devices: Map<string, any>, users: Map<string, any>, courses: Map<string, any>,
 *   people: Map<string, any>, sessions: Map<string, any>}} Directory
 */

/** @param {Context} context */
export function reviewScreen(context) {
  const el = h('div', null, loading());
  load(context, el).catch((error) => replace(el, errorBox(error)));
  return { title: t('console.nav.review'), el };
}

/**
 * @param {Context} context
 * @param {HTMLElement} el
 */
async function load(context, el) {
  const api = context.api;
  const [conflicts, quarantine, devices, users, courses, people] = await Promise.all([
    all(api, '/api/v1/sync/conflicts', { status: 'open' }),
    all(api, '/api/v1/sync/quarantine', { status: 'open' }),
    all(api, '/api/v1/devices'),
    all(api, '/api/v1/users'),
    all(api, '/api/v1/courses'),
    all(api, '/api/v1/people'),
  ]);
  // The records the conflicts are about, to say whose mark it is and at which session.
  const records = await Promise.all(
    conflicts.map((c) => api.request('GET', `/api/v1/${c.collection}/${c.record_id}`).catch(() => null)),
  );
  const sessionIds = new Set(records.filter((r) => r?.session_id).map((r) => r.session_id));
  const sessions = await Promise.all([...sessionIds].map((id) => api.request('GET', `/api/v1/sessions/${id}`).catch(() => null)));
  /** @type {Directory} */
  const directory = {
    devices: new Map(devices.map((d) => [d.id, d])),
    users: new Map(users.map((u) => [u.id, u])),
    courses: new Map(courses.map((c) => [c.id, c])),
    people: new Map(people.map((p) => [p.id, p])),
    sessions: new Map(sessions.filter(Boolean).map((s) => [s.id, s])),
  };
  replace(
    el,
    section(
      t('console.review.conflicts_open', { count: conflicts.length }),
      h('p', { class: 'muted' }, t('console.review.conflicts_explain')),
      conflicts.length
        ? h('ul', { class: 'review-list', 'data-testid': 'conflicts' }, conflicts.map((c, i) => conflictItem(context, c, records[i], directory)))
        : h('p', { 'data-testid': 'no-conflicts' }, t('console.review.no_conflicts')),
    ),
    section(
      t('console.review.quarantine_open', { count: quarantine.length }),
      h('p', { class: 'muted' }, t('console.review.quarantine_explain')),
      quarantine.length
        ? h('ul', { class: 'review-list', 'data-testid': 'quarantine' }, quarantine.map((q) => quarantineItem(context, q, directory)))
        : h('p', { 'data-testid': 'no-quarantine' }, t('console.review.no_quarantine')),
    ),
  );
}

/**
 * The device and account a stamp's node names, and the stamp's time.
 * @param {string} stamp `MILLIS-COUNTER-NODE`
 * @param {Directory} directory
 */
function writer(stamp, directory) {
  const [millis, , ...node] = stamp.split('-');
  const device = directory.devices.get(node.join('-'));
  const user = device ? directory.users.get(device.user_id) : null;
  return t('console.review.by', {
    who: user ? user.display_name : t('console.review.server'),
    device: device ? device.name : node.join('-'),
    when: formatDateTime(Number(millis)),
  });
}

/** @param {any} value */
function valueText(value) {
  if (value === null || value === undefined) return t('console.review.empty');
  if (typeof value === 'string' && ['present', 'late', 'excused', 'absent'].includes(value)) return t(`status.${value}`);
  if (value === true) return t('console.review.deleted');
  if (value === false) return t('console.review.kept');
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * @param {Context} context
 * @param {any} conflict
 * @param {any} record
 * @param {Directory} directory
 */
function conflictItem(context, conflict, record, directory) {
  const person = record ? directory.people.get(record.person_id) : null;
  const session = record?.session_id ? directory.sessions.get(record.session_id) : null;
  const course = directory.courses.get(conflict.course_id);
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  /**
   * @param {'losing'|'winning'} side
   */
  const choice = (side) => {
    const value = side === 'losing' ? conflict.losing_value : conflict.winning_value;
    return h(
      'div',
      { class: `side side-${side}`, 'data-side': side },
      h('p', { class: 'side-label' }, t(`console.review.${side}`)),
      h('p', { class: 'side-value', 'data-value': JSON.stringify(value) }, valueText(value)),
      h('p', { class: 'muted small' }, writer(side === 'losing' ? conflict.losing_stamp : conflict.winning_stamp, directory)),
      h(
        'button',
        {
          type: 'button',
          class: side === 'losing' ? '' : 'primary',
          'data-testid': `choose-${side}`,
          onclick: async () => {
            try {
              await context.api.request('POST', `/api/v1/sync/conflicts/${conflict.id}/resolve`, { body: { value } });
              context.rerender();
            } catch (error) {
              replace(message, errorText(error));
              message.hidden = false;
            }
          },
        },
        t(`console.review.choose_${side}`),
      ),
    );
  };
  return h(
    'li',
    { class: 'review-item', 'data-conflict': conflict.id, 'data-record': conflict.record_id },
    h(
      'p',
      { class: 'review-what' },
      h('strong', null, person ? person.full_name : conflict.record_id),
      ' · ',
      t(`console.review.collection.${conflict.collection}`),
      ' · ',
      t('console.review.field', { field: conflict.field }),
    ),
    h('p', { class: 'muted small' }, [course?.title, session ? `${session.topic} (${formatDateTime(session.starts_at)})` : null].filter(Boolean).join(' · ')),
    h('div', { class: 'sides' }, choice('losing'), choice('winning')),
    message,
  );
}

/**
 * @param {Context} context
 * @param {any} entry
 * @param {Directory} directory
 */
function quarantineItem(context, entry, directory) {
  const device = directory.devices.get(entry.device_id);
  const user = directory.users.get(entry.user_id);
  const course = entry.course_id ? directory.courses.get(entry.course_id) : null;
  const fields = entry.body && typeof entry.body === 'object' ? entry.body.fields : undefined;
  const fieldsId = `fields-${entry.id}`;
  const editor = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { id: fieldsId, rows: 4, class: 'mono', 'data-testid': 'reapply-fields', value: JSON.stringify(fields ?? {}, null, 2) })
  );
  const message = h('p', { class: 'error', role: 'alert', hidden: true, 'data-testid': 'quarantine-error' });
  const fail = (/** @type {unknown} */ error) => {
    replace(message, errorText(error));
    message.hidden = false;
  };
  const person = fields?.person_id ? directory.people.get(fields.person_id) : null;
  return h(
    'li',
    { class: 'review-item', 'data-quarantine': entry.id },
    h('p', { class: 'review-what' }, h('strong', null, t(`console.review.reason`, { reason: entry.reason })), ' ', entry.message),
    h(
      'p',
      { class: 'muted small' },
      t('console.review.sent_by', {
        who: user ? user.display_name : entry.user_id,
        device: device ? device.name : entry.device_id,
        when: formatDateTime(entry.created_at),
      }),
    ),
    h('p', { class: 'small' }, [t(`console.review.collection.${entry.collection}`), course?.title, person?.full_name].filter(Boolean).join(' · ')),
    h('div', { class: 'field' }, h('label', { for: fieldsId }, t('console.review.fields')), editor),
    h(
      'div',
      { class: 'form-actions' },
      h(
        'button',
        {
          type: 'button',
          class: 'primary',
          'data-testid': 'reapply',
          onclick: async () => {
            let corrected;
            try {
              corrected = JSON.parse(editor.value);
            } catch {
              fail(t('console.review.bad_json'));
              return;
            }
            try {
              const changed = JSON.stringify(corrected) !== JSON.stringify(fields ?? {});
              await context.api.request('POST', `/api/v1/sync/quarantine/${entry.id}/reapply`, { body: changed ? { fields: corrected } : {} });
              context.rerender();
            } catch (error) {
              fail(error);
            }
          },
        },
        t('console.review.reapply'),
      ),
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'dismiss',
          onclick: async () => {
            try {
              await context.api.request('POST', `/api/v1/sync/quarantine/${entry.id}/dismiss`);
              context.rerender();
            } catch (error) {
              fail(error);
            }
          },
        },
        t('console.review.dismiss'),
      ),
    ),
    message,
  );
}
