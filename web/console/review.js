// Sync review: the conflict log (the losing and the winning value side by side, who and which
// device wrote each, resolved by choosing one) and the quarantine (what the server refused and
// why; re-applied, possibly with corrected fields, or dismissed).

import { ApiError } from '/shared/api.js';
import { h, replace } from '/shared/dom.js';
import { formatDateTime, known, t } from '/shared/i18n.js';
import { all, errorBox, errorText, loading } from './ui.js';

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

/** Entries shown per page: each is a card with its own buttons, so fewer than a table's rows. */
const REVIEW_PAGE = 10;

/**
 * Where each list stands (page, order), kept while the screen is redrawn after a resolution.
 * @type {Record<'conflicts'|'quarantine', {page: number, newest: boolean}>}
 */
const position = { conflicts: { page: 0, newest: false }, quarantine: { page: 0, newest: false } };

/**
 * @param {Context} context
 * @param {HTMLElement} el
 */
async function load(context, el) {
  const api = context.api;
  const [devices, users, courses] = await Promise.all([all(api, '/api/v1/devices'), all(api, '/api/v1/users'), all(api, '/api/v1/courses')]);
  /** @type {Directory} */
  const directory = {
    devices: new Map(devices.map((d) => [d.id, d])),
    users: new Map(users.map((u) => [u.id, u])),
    courses: new Map(courses.map((c) => [c.id, c])),
    people: new Map(),
    sessions: new Map(),
  };
  const conflicts = reviewList({
    api,
    path: '/api/v1/sync/conflicts',
    state: position.conflicts,
    testid: 'conflicts',
    heading: (count) => t('console.review.conflicts_open', { count }),
    explain: t('console.review.conflicts_explain'),
    empty: h('p', { 'data-testid': 'no-conflicts' }, t('console.review.no_conflicts')),
    items: async (page) => {
      // The records the conflicts are about, to say whose mark it is and at which session.
      const records = await Promise.all(page.map((c) => api.request('GET', `/api/v1/${c.collection}/${c.record_id}`).catch(() => null)));
      await lookUp(api, directory, records.map((r) => r?.person_id), records.map((r) => r?.session_id));
      return page.map((c, i) => conflictItem(context, c, records[i], directory));
    },
  });
  const quarantine = reviewList({
    api,
    path: '/api/v1/sync/quarantine',
    state: position.quarantine,
    testid: 'quarantine',
    heading: (count) => t('console.review.quarantine_open', { count }),
    explain: t('console.review.quarantine_explain'),
    empty: h('p', { 'data-testid': 'no-quarantine' }, t('console.review.no_quarantine')),
    items: async (page) => {
      await lookUp(api, directory, page.map((q) => fieldsOf(q)?.person_id), []);
      return page.map((q) => quarantineItem(context, q, directory));
    },
  });
  await Promise.all([conflicts.ready, quarantine.ready]);
  replace(el, conflicts.el, quarantine.el);
}

/**
 * The people and sessions a page names, read one by one (a page names few; the roster is long).
 * @param {import('/shared/api.js').Api} api
 * @param {Directory} directory
 * @param {(string|undefined|null)[]} personIds
 * @param {(string|undefined|null)[]} sessionIds
 */
async function lookUp(api, directory, personIds, sessionIds) {
  /** @param {Map<string, any>} known @param {string} path @param {(string|undefined|null)[]} ids */
  const read = (known, path, ids) =>
    Promise.all(
      [...new Set(ids)]
        .filter((id) => typeof id === 'string' && !known.has(id))
        .map((id) =>
          api.request('GET', `${path}/${id}`).then(
            (record) => known.set(/** @type {string} */ (id), record),
            () => null,
          ),
        ),
    );
  await Promise.all([read(directory.people, '/api/v1/people', personIds), read(directory.sessions, '/api/v1/sessions', sessionIds)]);
}

/**
 * One review list paged by the API (`limit`/`offset`, oldest first): the newest-first order
 * reads the pages from the end, so either order costs one request per page.
 * @param {{api: import('/shared/api.js').Api, path: string, state: {page: number, newest: boolean},
 *   testid: string, heading: (count: number) => string, explain: string, empty: HTMLElement,
 *   items: (page: any[]) => Promise<HTMLElement[]>}} spec
 */
function reviewList(spec) {
  const { api, state } = spec;
  const title = h('h2');
  const body = h('div');
  const el = h('section', { class: 'panel', 'data-testid': `${spec.testid}-section` }, title, h('p', { class: 'muted' }, spec.explain), body);
  const order = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { id: `${spec.testid}-order`, 'data-testid': `${spec.testid}-order` },
      h('option', { value: 'oldest' }, t('console.review.oldest_first')),
      h('option', { value: 'newest' }, t('console.review.newest_first')),
    )
  );
  order.value = state.newest ? 'newest' : 'oldest';
  order.addEventListener('change', () => {
    state.newest = order.value === 'newest';
    state.page = 0;
    draw().catch((error) => replace(body, errorBox(error)));
  });
  /** @param {number} offset @param {number} limit */
  const fetchPage = (offset, limit) => api.request('GET', spec.path, { query: { status: 'open', limit, offset } });
  const draw = async () => {
    let page = await fetchPage(state.newest ? 0 : state.page * REVIEW_PAGE, state.newest ? 1 : REVIEW_PAGE);
    const total = page.total;
    const pages = Math.max(1, Math.ceil(total / REVIEW_PAGE));
    if (state.page > pages - 1) {
      state.page = pages - 1;
      if (!state.newest) page = await fetchPage(state.page * REVIEW_PAGE, REVIEW_PAGE);
    }
    /** @type {any[]} */
    let items = page.items;
    if (state.newest) {
      const end = total - state.page * REVIEW_PAGE;
      const start = Math.max(0, end - REVIEW_PAGE);
      items = end > 0 ? (await fetchPage(start, end - start)).items.reverse() : [];
    }
    replace(title, spec.heading(total));
    if (total === 0) {
      replace(body, spec.empty);
      return;
    }
    const move = (/** @type {number} */ by) => () => {
      state.page += by;
      draw().catch((error) => replace(body, errorBox(error)));
    };
    replace(
      body,
      h('div', { class: 'actions' }, h('div', { class: 'field inline' }, h('label', { for: order.id }, t('console.review.order')), order)),
      h('ul', { class: 'review-list', 'data-testid': spec.testid }, await spec.items(items)),
      // One page needs no pager: the heading says how many.
      pages === 1
        ? null
        : h(
            'div',
            { class: 'pager', 'data-testid': `${spec.testid}-pager` },
            h('button', { type: 'button', disabled: state.page === 0, 'data-testid': `${spec.testid}-prev`, onclick: move(-1) }, t('console.prev')),
            h('span', null, t('console.page', { page: state.page + 1, pages, total })),
            h('button', { type: 'button', disabled: state.page >= pages - 1, 'data-testid': `${spec.testid}-next`, onclick: move(1) }, t('console.next')),
          ),
    );
  };
  return { el, ready: draw() };
}

/**
 * The fields a quarantined mutation carried.
 * @param {any} entry
 * @returns {Record<string, any>|undefined}
 */
function fieldsOf(entry) {
  return entry.body && typeof entry.body === 'object' ? entry.body.fields : undefined;
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

/**
 * Why the server refused a change, in the reader's language (a reason the catalogue does not know
 * yet is named by its code).
 * @param {string} reason
 */
function reasonText(reason) {
  return known(`console.reason.${reason}`) ? t(`console.reason.${reason}`) : t('console.reason.other', { reason });
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
      t('console.review.field', { field: known(`console.review.field_name.${conflict.field}`) ? t(`console.review.field_name.${conflict.field}`) : conflict.field }),
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
  const fields = fieldsOf(entry);
  const fieldsId = `fields-${entry.id}`;
  const editor = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { id: fieldsId, rows: 4, class: 'mono', 'data-testid': 'reapply-fields', value: JSON.stringify(fields ?? {}, null, 2) })
  );
  const message = h('p', { class: 'error', role: 'alert', hidden: true, 'data-testid': 'quarantine-error' });
  const fail = (/** @type {unknown} */ error) => {
    // A re-application still refused answers 409 with the refusal's reason as its code.
    const refusal = error instanceof ApiError && known(`console.reason.${error.code}`);
    replace(message, refusal ? t('console.review.still_refused', { reason: reasonText(error.code), message: error.message }) : errorText(error));
    message.hidden = false;
  };
  const person = fields?.person_id ? directory.people.get(fields.person_id) : null;
  return h(
    'li',
    { class: 'review-item', 'data-quarantine': entry.id },
    h('p', { class: 'review-what', 'data-reason': entry.reason }, h('strong', null, t('console.review.reason', { reason: reasonText(entry.reason) }))),
    entry.message ? h('p', { class: 'muted small', 'data-testid': 'quarantine-message' }, t('console.review.server_said', { message: entry.message })) : null,
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
