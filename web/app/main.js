// The field app: sign-in, my classes → sessions → the roll (trainers), the timetable and my
// attendance (trainees), materials kept offline, sync. Screens are drawn from the model
// (model.js) and redrawn when it changes; nothing is ever inserted as HTML.

import { Api, ApiError, OfflineError } from '/shared/api.js';
import { h, replace } from '/shared/dom.js';
import { fold, matchesQuery } from '/shared/fold.js';
import {
  codeText,
  formatBytes,
  formatDate,
  formatDateTime,
  formatSpan,
  formatTime,
  known,
  language,
  setLanguage,
  t,
} from '/shared/i18n.js';
import { Materials } from './materials.js';
import { Model, localDay } from './model.js';
import { badgePerson, startScanner } from './scan.js';
import { clearPulled, getMeta, setMeta } from './store.js';
import { Sync } from './sync.js';

const STATUSES = ['present', 'late', 'excused', 'absent'];
const ADD_RESULTS = 30;

const api = new Api({
  load: () => getMeta('session'),
  save: (session) => setMeta('session', session),
});
const model = new Model();
const sync = new Sync(api, model);
const materials = new Materials(api);

const root = /** @type {HTMLElement} */ (document.getElementById('app'));
/** @type {{update?: () => void, close?: () => void}|null} */
let screen = null;
/** @type {string|null} the account whose unsent changes ask for a new sign-in */
let signInFor = null;

boot();

async function boot() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => {});
  }
  await api.init();
  model.userId = api.session?.user.id || null;
  await Promise.all([model.load(), sync.init(), materials.load()]);
  model.subscribe(refresh);
  materials.listeners.add(refresh);
  sync.listeners.add(refresh);
  window.addEventListener('hashchange', () => render());
  window.addEventListener('online', () => {
    refresh();
    sync.now();
  });
  window.addEventListener('offline', refresh);
  // A sync now and then while the app is open: every minute, and every 10 s while changes wait
  // and the last attempt found no network (a phone may say it is online when it is not, and
  // then no "online" event comes when the network really returns).
  let lastAttempt = 0;
  setInterval(() => {
    if (!navigator.onLine || !api.session || sync.status.state === 'signed_out') return;
    const waiting = sync.sendable().length > 0 && sync.status.state === 'offline';
    if (Date.now() - lastAttempt >= (waiting ? 10_000 : 60_000)) {
      lastAttempt = Date.now();
      sync.now();
    }
  }, 5_000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && navigator.onLine && api.session) sync.now();
  });
  render();
  if (api.session && navigator.onLine) sync.now();
}

/** The signed-in person, for stamping changes. */
function who() {
  const session = /** @type {import('/shared/api.js').Session} */ (api.session);
  return { userId: session.user.id, deviceId: session.device_id };
}

function refresh() {
  if (screen?.update) screen.update();
  else render();
}

/** Sends a change soon after it is made, when there is a network. */
let pushSoon = /** @type {ReturnType<typeof setTimeout>|undefined} */ (undefined);
function changed() {
  clearTimeout(pushSoon);
  pushSoon = setTimeout(() => {
    if (navigator.onLine) sync.now();
  }, 1500);
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  return { name: parts[0] || 'courses', id: parts[1] || null };
}

function render() {
  screen?.close?.();
  screen = null;
  if (!api.session || signInFor) {
    replace(root, signInScreen());
    // A sync ending or a change arriving must not redraw the form under the user's fingers.
    screen = { update: () => {} };
    return;
  }
  const { name, id } = route();
  /** @type {{el: HTMLElement, update?: () => void, close?: () => void, title: string, back?: string}} */
  let view;
  switch (name) {
    case 'course':
      view = courseScreen(/** @type {string} */ (id));
      break;
    case 'session':
      view = rollScreen(/** @type {string} */ (id));
      break;
    case 'sync':
      view = syncScreen();
      break;
    case 'materials':
      view = materialsScreen();
      break;
    case 'settings':
      view = settingsScreen();
      break;
    default:
      view = coursesScreen();
  }
  const header = h('header', { class: 'top' });
  const drawHeader = () => replace(header, headerContent(view.title, view.back));
  drawHeader();
  const main = h('main', { id: 'main', tabindex: '-1' }, banner(), view.el);
  replace(root, header, main, nav(name));
  screen = {
    update: () => {
      drawHeader();
      const first = main.firstElementChild;
      if (first) first.replaceWith(banner());
      if (view.update) view.update();
      else render();
    },
    close: view.close,
  };
}

/**
 * @param {string} title
 * @param {string} [back]
 */
function headerContent(title, back) {
  const unsent = sync.sendable().length;
  const state = sync.status.state;
  // A phone on a network with no way out still says it is online: the last sync knows better.
  const online = navigator.onLine && state !== 'offline';
  const label =
    state === 'syncing'
      ? t('status.syncing')
      : `${online ? t('status.online') : t('status.offline')} · ${unsent ? t('status.unsent', { count: unsent }) : t('status.all_sent')}`;
  return [
    back ? h('a', { class: 'back', href: back, 'aria-label': t('nav.back') }, '‹') : null,
    h('h1', null, title),
    h(
      'a',
      {
        class: `chip ${online ? 'online' : 'offline'}${unsent ? ' unsent' : ''}`,
        href: '#/sync',
        'data-testid': 'sync-chip',
        'data-state': state,
        'data-unsent': String(unsent),
        title: state === 'error' ? t('sync.error', { message: sync.status.message || '' }) : null,
      },
      label,
    ),
  ];
}

/** The sign-out banner: the device was revoked or the account disabled; nothing unsent is lost. */
function banner() {
  if (sync.status.state !== 'signed_out') return h('div', { hidden: true });
  const reason = sync.status.reason;
  const text =
    reason === 'device_revoked' || reason === 'account_disabled'
      ? t(`sync.signed_out.${reason}`)
      : t('sync.signed_out.other');
  return h(
    'div',
    { class: 'banner danger', role: 'alert', 'data-testid': 'signed-out' },
    h('p', null, text),
    h('p', null, t('sync.signed_out.keep', { count: sync.sendable().length })),
    h(
      'button',
      {
        class: 'primary',
        onclick: () => {
          signInFor = api.session?.user.username || null;
          render();
        },
      },
      t('sync.sign_in_again'),
    ),
  );
}

/** @param {string} active */
function nav(active) {
  const item = (/** @type {string} */ name, /** @type {string} */ label) =>
    h('a', { href: `#/${name}`, 'aria-current': active === name ? 'page' : null }, label);
  return h(
    'nav',
    { class: 'bottom', 'aria-label': t('app.name') },
    item('courses', t('nav.courses')),
    item('sync', t('nav.sync')),
    item('materials', t('nav.materials')),
    item('settings', t('nav.settings')),
  );
}

function signInScreen() {
  const previous = signInFor;
  const held = model.outbox.filter((e) => e.user_id !== (api.session?.user.id ?? null));
  const error = h('p', { class: 'error', role: 'alert', 'aria-live': 'assertive' });
  const username = h('input', {
    id: 'username',
    name: 'username',
    autocomplete: 'username',
    autocapitalize: 'none',
    required: true,
    value: previous || '',
  });
  const password = h('input', {
    id: 'password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const device = h('input', {
    id: 'device',
    name: 'device',
    required: true,
    maxlength: '100',
    value: localStorage.getItem('diemdanh.device') || t('signin.device_default'),
  });
  const submit = h('button', { class: 'primary', type: 'submit' }, t('signin.submit'));
  const form = h(
    'form',
    {
      class: 'card signin',
      onsubmit: async (/** @type {Event} */ event) => {
        event.preventDefault();
        const input = /** @type {HTMLInputElement[]} */ ([username, password, device]);
        submit.setAttribute('disabled', '');
        submit.textContent = t('signin.busy');
        replace(error);
        try {
          const before = (await getMeta('lastUser')) || null;
          const session = await api.login(input[0].value.trim(), input[1].value, input[2].value.trim());
          localStorage.setItem('diemdanh.device', input[2].value.trim());
          if (before && before !== session.user.id) {
            // Another account's records must not show; its unsent changes stay in the outbox.
            await clearPulled();
            await model.load();
          }
          await setMeta('lastUser', session.user.id);
          model.userId = session.user.id;
          model.changed();
          signInFor = null;
          location.hash = '#/courses';
          render();
          sync.afterSignIn();
        } catch (e) {
          const message =
            e instanceof OfflineError
              ? t('signin.offline')
              : t('signin.failed', { message: e instanceof ApiError ? codeText(e.code, e.message) : e instanceof Error ? e.message : String(e) });
          replace(error, message);
          submit.removeAttribute('disabled');
          submit.textContent = t('signin.submit');
        }
      },
    },
    h('h2', null, t('signin.title')),
    h('p', { class: 'muted' }, t('signin.intro')),
    previous ? h('p', { class: 'banner' }, t('signin.again_for', { username: previous })) : null,
    held.length && !previous
      ? h('p', { class: 'banner' }, t('signin.other_user', { count: held.length, username: '' }))
      : null,
    field(t('signin.username'), username),
    field(t('signin.password'), password),
    field(t('signin.device'), device),
    error,
    submit,
  );
  return h(
    'div',
    { class: 'signin-page' },
    h('div', { class: 'brand' }, h('img', { src: '/app/icons/icon.svg', alt: '', width: '64', height: '64' }), h('h1', null, t('app.name')), h('p', null, t('app.tagline'))),
    form,
    languageSwitch(),
  );
}

/**
 * @param {string} label
 * @param {HTMLElement} input
 */
function field(label, input) {
  return h('p', { class: 'field' }, h('label', { for: input.id }, label), input);
}

function languageSwitch() {
  const select = h(
    'select',
    {
      id: 'language',
      onchange: (/** @type {Event} */ e) => {
        setLanguage(/** @type {'vi'|'en'} */ (/** @type {HTMLSelectElement} */ (e.target).value));
        render();
      },
    },
    h('option', { value: 'vi', selected: language() === 'vi' }, t('lang.vi')),
    h('option', { value: 'en', selected: language() === 'en' }, t('lang.en')),
  );
  return field(t('lang.label'), select);
}

function coursesScreen() {
  const el = h('section', { class: 'list' });
  const draw = () => {
    const courses = model.courses();
    const trainee = api.session?.user.role === 'trainee';
    replace(
      el,
      courses.length === 0 ? h('p', { class: 'empty' }, t('courses.none')) : null,
      courses.map((/** @type {any} */ course) =>
        h(
          'a',
          { class: 'card course', href: `#/course/${course.id}` },
          h('h2', null, course.title),
          h(
            'p',
            { class: 'muted' },
            t('courses.dates', { start: formatDate(course.start_date), end: formatDate(course.end_date) }),
            course.place ? ` · ${course.place}` : '',
          ),
          h(
            'p',
            null,
            t('courses.sessions', { count: model.sessionsOf(course.id).length }),
            trainee ? '' : ` · ${t('courses.trainees', { count: model.trainees(course.id).length })}`,
          ),
        ),
      ),
    );
  };
  draw();
  return { el, update: draw, title: t('courses.title') };
}

/** @param {string} courseId */
function courseScreen(courseId) {
  const el = h('section');
  const trainee = api.session?.user.role === 'trainee';
  let title = t('course.sessions');
  const draw = () => {
    const course = model.view('courses').get(courseId);
    if (!course) {
      replace(el, h('p', { class: 'empty' }, t('course.not_found')));
      return;
    }
    title = course.title;
    const today = localDay(new Date());
    const sessions = model.sessionsOf(courseId);
    const total = model.trainees(courseId).length;
    const me = api.session?.user.person_id;
    replace(
      el,
      h('h2', { class: 'course-title' }, course.title),
      h('h3', null, trainee ? t('course.timetable') : t('course.sessions')),
      sessions.length === 0 ? h('p', { class: 'empty' }, t('course.no_sessions')) : null,
      h(
        'ul',
        { class: 'sessions' },
        sessions.map((/** @type {any} */ session) => {
          const isToday = localDay(new Date(session.starts_at)) === today;
          const attendance = model.attendanceOf(session.id);
          const mine = me ? attendance.get(me) : null;
          const body = [
            h(
              'p',
              { class: 'when' },
              isToday ? h('strong', { class: 'today' }, `${t('session.today')} · `) : null,
              formatSpan(session.starts_at, session.ends_at),
            ),
            h('p', { class: 'topic' }, session.topic),
            session.place ? h('p', { class: 'muted' }, session.place) : null,
            trainee
              ? h(
                  'p',
                  { class: `mine status-${mine?.status || 'none'}`, 'data-testid': 'my-status' },
                  t('session.my_status', {
                    status: mine ? t(`status.${mine.status}`) : t('session.my_status_none'),
                  }),
                )
              : h('p', { class: 'muted' }, t('session.marked', { marked: markedCount(attendance, courseId), total })),
          ];
          return h(
            'li',
            null,
            trainee
              ? h('div', { class: 'card session' }, body)
              : h('a', { class: 'card session', href: `#/session/${session.id}` }, body),
          );
        }),
      ),
      h('h3', null, t('course.materials')),
      materialList(model.materialsOf(courseId)),
    );
  };
  draw();
  return {
    el,
    update: draw,
    get title() {
      return title;
    },
    back: '#/courses',
  };
}

/**
 * `HH:MM` of a moment in the device's time zone, as a time input shows it.
 * @param {Date} date
 */
function clockTime(date) {
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/**
 * The moment at `HH:MM` on the same local day as `day`, in UTC with milliseconds as the server
 * stores it.
 * @param {Date} day
 * @param {string} hhmm
 */
function atClockTime(day, hhmm) {
  const [hours, minutes] = hhmm.split(':').map(Number);
  const moment = new Date(day);
  moment.setHours(hours, minutes, 0, 0);
  return moment.toISOString();
}

/**
 * How many enrolled trainees have a mark at a session.
 * @param {Map<string, any>} attendance
 * @param {string} courseId
 */
function markedCount(attendance, courseId) {
  let marked = 0;
  for (const { person } of model.trainees(courseId)) if (attendance.has(person.id)) marked += 1;
  return marked;
}

/** @param {string} sessionId */
function rollScreen(sessionId) {
  const el = h('section', { class: 'roll' });
  const session = model.view('sessions').get(sessionId);
  if (!session) {
    replace(el, h('p', { class: 'empty' }, t('session.not_found')));
    return { el, title: t('roll.title'), back: '#/courses' };
  }
  const courseId = session.course_id;
  const counts = h('div', { class: 'counts', 'aria-live': 'polite', 'data-testid': 'roll-counts' });
  const search = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'search',
      id: 'roll-search',
      placeholder: t('roll.search'),
      'aria-label': t('roll.search'),
      oninput: () => drawRows(),
    })
  );
  const unmarkedOnly = /** @type {HTMLInputElement} */ (
    h('input', { type: 'checkbox', id: 'unmarked-only', onchange: () => drawRows() })
  );
  const list = h('ul', { class: 'rows', 'data-testid': 'roll' });
  const status = h('p', { class: 'flash', role: 'status', 'aria-live': 'polite' });
  /** @type {Map<string, {row: HTMLElement, signature: string}>} */
  const rows = new Map();
  /** @type {(() => void)|null} */
  let closeOverlay = null;

  const drawCounts = () => {
    const attendance = model.attendanceOf(sessionId);
    const trainees = model.trainees(courseId);
    /** @type {Record<string, number>} */
    const by = { present: 0, late: 0, excused: 0, absent: 0 };
    let unmarked = 0;
    for (const { person } of trainees) {
      const record = attendance.get(person.id);
      if (record) by[record.status] = (by[record.status] || 0) + 1;
      else unmarked += 1;
    }
    replace(
      counts,
      h('strong', { class: 'present-count' }, t('roll.counts', { present: by.present, total: trainees.length })),
      h('span', null, t('roll.count_late', { count: by.late })),
      h('span', null, t('roll.count_excused', { count: by.excused })),
      h('span', null, t('roll.count_absent', { count: by.absent })),
      h('span', null, t('roll.count_unmarked', { count: unmarked })),
    );
  };

  /**
   * @param {any} person
   * @param {any} record
   */
  const rowFor = (person, record) => {
    const name = person.full_name;
    const buttons = STATUSES.map((value) =>
      h(
        'button',
        {
          type: 'button',
          class: `mark ${value}`,
          'aria-pressed': record?.status === value ? 'true' : 'false',
          'data-status': value,
          onclick: async () => {
            if (record?.status === value) return;
            await model.mark(who(), sessionId, person.id, value);
            changed();
          },
        },
        t(`status_short.${value}`),
      ),
    );
    return h(
      'li',
      { class: `row ${record ? `status-${record.status}` : 'unmarked'}`, 'data-person': person.id },
      h(
        'div',
        { class: 'who' },
        h('p', { class: 'name' }, name),
        h(
          'p',
          { class: 'muted' },
          [model.unitName(person.unit_id), person.position ? t(`position.${person.position}`) : '']
            .filter(Boolean)
            .join(' · '),
        ),
        record?.checked_in_at
          ? h('p', { class: 'time' }, t('roll.checked_in', { time: formatTime(record.checked_in_at) }))
          : null,
        record?.note ? h('p', { class: 'note-text' }, record.note) : null,
        record?.pending ? h('span', { class: 'pending' }, t('roll.pending')) : null,
      ),
      h(
        'div',
        { class: 'marks', role: 'group', 'aria-label': t('roll.status_group', { name }) },
        buttons,
        record
          ? h(
              'button',
              {
                type: 'button',
                class: 'note-button',
                'aria-label': t('roll.details_for', { name }),
                onclick: () => openNote(person, record),
              },
              t('roll.details'),
            )
          : null,
      ),
    );
  };

  const drawRows = () => {
    const attendance = model.attendanceOf(sessionId);
    const query = search.value;
    const only = unmarkedOnly.checked;
    const trainees = model.trainees(courseId).filter(
      ({ person, folded }) =>
        (!query || matchesQuery(query, folded)) && (!only || !attendance.has(person.id)),
    );
    const items = [];
    for (const { person } of trainees) {
      const record = attendance.get(person.id);
      const signature = record
        ? `${record.status}|${record.checked_in_at}|${record.note}|${record.pending ? 1 : 0}|${person.unit_id}`
        : `none|${person.unit_id}`;
      let kept = rows.get(person.id);
      if (!kept || kept.signature !== signature) {
        kept = { row: rowFor(person, record), signature };
        rows.set(person.id, kept);
      }
      items.push(kept.row);
    }
    replace(
      list,
      items.length === 0
        ? h('li', { class: 'empty' }, model.trainees(courseId).length ? t('roll.none_found') : t('roll.none_enrolled'))
        : items,
    );
  };

  /**
   * @param {any} person
   * @param {any} record
   */
  const openNote = (person, record) => {
    const text = /** @type {HTMLTextAreaElement} */ (
      h('textarea', { id: 'note-text', maxlength: '4000', rows: '3', value: record.note || '' })
    );
    const arrived = record.status === 'present' || record.status === 'late';
    const time = /** @type {HTMLInputElement} */ (
      h('input', {
        id: 'checked-in-time',
        type: 'time',
        value: record.checked_in_at ? clockTime(new Date(record.checked_in_at)) : '',
      })
    );
    const dialog = overlay(
      t('roll.note_for', { name: person.full_name }),
      arrived ? field(t('roll.arrival'), time) : null,
      field(t('roll.note'), text),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: () => dialog.close() }, t('roll.note_cancel')),
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            onclick: async () => {
              /** @type {{note: string|null, checked_in_at?: string|null}} */
              const details = { note: text.value };
              if (arrived) {
                details.checked_in_at = time.value
                  ? atClockTime(new Date(record.checked_in_at || session.starts_at), time.value)
                  : null;
              }
              await model.details(who(), sessionId, person.id, details);
              dialog.close();
              changed();
            },
          },
          t('roll.note_save'),
        ),
      ),
    );
    text.focus();
  };

  const openAdd = () => {
    const query = /** @type {HTMLInputElement} */ (
      h('input', { type: 'search', id: 'add-search', oninput: () => drawResults() })
    );
    const results = h('ul', { class: 'results', 'data-testid': 'add-results' });
    const drawResults = () => {
      const enrolled = new Set(model.trainees(courseId).map((/** @type {any} */ x) => x.person.id));
      const roster = model.rosters.get(courseId)?.items || [];
      const matches = roster.filter(
        (p) => !enrolled.has(p.id) && (!query.value || matchesQuery(query.value, fold(p.full_name))),
      );
      replace(
        results,
        matches.length === 0 ? h('li', { class: 'empty' }, t('add.none')) : null,
        matches.slice(0, ADD_RESULTS).map((p) =>
          h(
            'li',
            { class: 'result' },
            h(
              'div',
              null,
              h('p', { class: 'name' }, p.full_name),
              h('p', { class: 'muted' }, [model.unitName(p.unit_id), t(`position.${p.position}`)].filter(Boolean).join(' · ')),
            ),
            h(
              'button',
              {
                type: 'button',
                class: 'primary',
                onclick: async () => {
                  await model.enroll(who(), courseId, p.id);
                  await model.mark(who(), sessionId, p.id, 'present');
                  changed();
                  dialog.close();
                  replace(status, t('add.done', { name: p.full_name }));
                },
              },
              t('add.button'),
            ),
          ),
        ),
        matches.length > ADD_RESULTS ? h('li', { class: 'muted' }, t('add.more', { count: matches.length - ADD_RESULTS })) : null,
      );
    };
    const dialog = overlay(
      t('add.title'),
      h('p', { class: 'muted' }, t('add.intro')),
      field(t('add.search'), query),
      results,
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => dialog.close() }, t('add.close'))),
    );
    drawResults();
    query.focus();
  };

  const openScan = async () => {
    const video = /** @type {HTMLVideoElement} */ (h('video', { class: 'camera', 'aria-label': t('scan.hint') }));
    const said = h('p', { class: 'flash', role: 'status', 'aria-live': 'polite', 'data-testid': 'scan-result' }, t('scan.hint'));
    /** @type {import('./scan.js').Scanner|null} */
    let scanner = null;
    /** @type {Map<string, number>} */
    const recently = new Map();
    const dialog = overlay(
      t('scan.title'),
      video,
      said,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: () => dialog.close() }, t('scan.close'))),
      () => scanner?.stop(),
    );
    try {
      scanner = await startScanner(video, async (text) => {
        const personId = badgePerson(text);
        const key = personId || text;
        if (Date.now() - (recently.get(key) || 0) < 3000) return;
        recently.set(key, Date.now());
        const trainee = personId && model.trainees(courseId).find((/** @type {any} */ x) => x.person.id === personId);
        if (!trainee) {
          const person = personId && model.person(personId);
          replace(said, person ? t('scan.not_enrolled', { name: person.full_name }) : t('scan.unknown'));
          return;
        }
        const record = model.attendanceOf(sessionId).get(personId);
        if (record && (record.status === 'present' || record.status === 'late')) {
          replace(said, t('scan.already', { name: trainee.person.full_name }));
          return;
        }
        await model.mark(who(), sessionId, personId, 'present');
        changed();
        replace(said, t('scan.marked', { name: trainee.person.full_name, time: formatTime(Date.now()) }));
        navigator.vibrate?.(80);
      });
    } catch (e) {
      replace(said, t('scan.no_camera', { message: e instanceof Error ? e.message : String(e) }));
    }
  };

  /**
   * A modal panel over the roll; `onClose` runs when it closes.
   * @param {string} title
   * @param {...any} content
   */
  const overlay = (title, ...content) => {
    const onClose = typeof content[content.length - 1] === 'function' ? content.pop() : null;
    const panel = h(
      'div',
      { class: 'overlay', role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
      h('div', { class: 'panel' }, h('h2', null, title), content),
    );
    const close = () => {
      onClose?.();
      panel.remove();
      closeOverlay = null;
      document.removeEventListener('keydown', onKey);
    };
    const onKey = (/** @type {KeyboardEvent} */ e) => {
      if (e.key === 'Escape') close();
    };
    document.addEventListener('keydown', onKey);
    closeOverlay?.();
    closeOverlay = close;
    document.body.appendChild(panel);
    return { close };
  };

  replace(
    el,
    h(
      'div',
      { class: 'session-head' },
      h('p', { class: 'topic' }, session.topic),
      h('p', { class: 'muted' }, formatSpan(session.starts_at, session.ends_at), session.place ? ` · ${session.place}` : ''),
    ),
    counts,
    h(
      'div',
      { class: 'tools' },
      h('button', { type: 'button', class: 'primary', onclick: openScan }, t('roll.scan')),
      h('button', { type: 'button', onclick: openAdd }, t('roll.add')),
    ),
    status,
    h('div', { class: 'filters' }, search, h('label', { class: 'check' }, unmarkedOnly, t('roll.only_unmarked'))),
    list,
  );
  drawCounts();
  drawRows();
  const course = model.view('courses').get(courseId);
  return {
    el,
    update: () => {
      if (!model.view('sessions').get(sessionId)) {
        render();
        return;
      }
      drawCounts();
      drawRows();
    },
    close: () => closeOverlay?.(),
    title: course?.title || t('roll.title'),
    back: `#/course/${courseId}`,
  };
}

/**
 * The materials of a course, each with download, progress, open and delete.
 * @param {any[]} list
 */
function materialList(list) {
  if (list.length === 0) return h('p', { class: 'empty' }, t('course.no_materials'));
  return h(
    'ul',
    { class: 'materials' },
    list.map((material) => {
      const kept = materials.files.get(material.id);
      const active = materials.active.get(material.id);
      const total = material.size_bytes || kept?.size || 0;
      const received = active?.received ?? kept?.received ?? 0;
      const complete = kept?.complete && kept.etag === (material.sha256 ? `"${material.sha256}"` : null);
      const actions = [];
      if (!material.sha256) {
        actions.push(h('p', { class: 'muted' }, t('materials.no_file')));
      } else if (complete) {
        actions.push(
          h('button', { type: 'button', class: 'primary', onclick: () => openMaterial(material, false) }, t('materials.open')),
          h('button', { type: 'button', onclick: () => openMaterial(material, true) }, t('materials.save')),
          h('button', { type: 'button', class: 'danger', onclick: () => materials.remove(material.id) }, t('materials.delete')),
        );
      } else if (!active) {
        actions.push(
          h(
            'button',
            {
              type: 'button',
              class: 'primary',
              onclick: () =>
                materials.download(material).catch(() => {
                  failed.add(material.id);
                  refresh();
                }),
            },
            received > 0 ? t('materials.resume') : t('materials.download'),
          ),
        );
        if (received > 0) {
          actions.push(h('button', { type: 'button', class: 'danger', onclick: () => materials.remove(material.id) }, t('materials.delete')));
        }
      }
      return h(
        'li',
        { class: 'card material', 'data-material': material.id },
        h('p', { class: 'name' }, material.title),
        h('p', { class: 'muted' }, [material.file_name, total ? formatBytes(total) : ''].filter(Boolean).join(' · ')),
        received > 0 && !complete
          ? [
              h('progress', {
                max: String(total || 1),
                value: String(received),
                'aria-label': t('materials.progress', { title: material.title }),
              }),
              h(
                'p',
                { class: 'muted' },
                t(active ? 'materials.downloading' : 'materials.partial', {
                  done: formatBytes(received),
                  total: formatBytes(total),
                }),
              ),
              !active && failed.has(material.id) ? h('p', { class: 'error' }, t('materials.failed')) : null,
            ]
          : null,
        complete ? h('p', { class: 'ok' }, t('materials.kept')) : null,
        h('div', { class: 'actions' }, actions),
      );
    }),
  );
}

/** Materials whose last download attempt was cut. */
const failed = new Set();

/**
 * Opens a kept file from the device (PDF and video in the browser), or saves it.
 * @param {any} material
 * @param {boolean} save
 */
async function openMaterial(material, save) {
  const blob = await materials.blob(material.id);
  if (!blob) return;
  const url = URL.createObjectURL(blob);
  if (save) {
    const link = h('a', { href: url, download: material.file_name || material.title });
    document.body.appendChild(link);
    link.click();
    link.remove();
  } else {
    window.open(url, '_blank');
  }
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function syncScreen() {
  const el = h('section', { class: 'sync' });
  const draw = () => {
    const status = sync.status;
    const mine = sync.sendable();
    const held = model.outbox.filter((e) => e.user_id !== api.session?.user.id);
    replace(
      el,
      h(
        'div',
        { class: 'card' },
        h(
          'button',
          {
            type: 'button',
            class: 'primary wide',
            disabled: status.state === 'syncing',
            onclick: () => sync.now(),
            'data-testid': 'sync-now',
          },
          status.state === 'syncing' ? t('status.syncing') : t('sync.now'),
        ),
        h(
          'p',
          { 'data-testid': 'last-sync' },
          status.lastSync ? t('sync.last', { time: formatDateTime(status.lastSync) }) : t('sync.never'),
        ),
        status.state === 'offline' ? h('p', { class: 'banner' }, t('sync.offline')) : null,
        status.state === 'error' ? h('p', { class: 'error' }, t('sync.error', { message: status.message || '' })) : null,
      ),
      h('h2', null, t('sync.unsent', { count: mine.length })),
      mine.length === 0
        ? h('p', { class: 'empty' }, t('sync.unsent_none'))
        : h('ul', { class: 'changes', 'data-testid': 'unsent' }, mine.slice(-200).reverse().map((e) => h('li', null, describe(e)))),
      held.length ? [h('h2', null, t('sync.held', { count: held.length }))] : null,
      h('h2', null, t('sync.refused', { count: model.refused.length })),
      model.refused.length ? h('p', { class: 'muted' }, t('sync.refused_intro')) : null,
      h(
        'ul',
        { class: 'changes refused', 'data-testid': 'refused' },
        [...model.refused].reverse().map((r) =>
          h(
            'li',
            { 'data-reason': r.reason },
            h('p', null, describe(r.mutation, r.subject)),
            h('p', { class: 'error' }, reasonText(r.reason)),
            h('p', { class: 'muted' }, r.message),
            h('button', { type: 'button', onclick: () => sync.dismissRefusal(/** @type {number} */ (r.seq)) }, t('sync.dismiss')),
          ),
        ),
      ),
    );
  };
  draw();
  return { el, update: draw, title: t('sync.title') };
}

/**
 * Why the server refused a change: in the app's own words where it has them (said to the one who
 * made it), else in the sync review's (which has words for every reason of the protocol).
 * @param {string} reason
 */
function reasonText(reason) {
  if (known(`reason.${reason}`)) return t(`reason.${reason}`);
  return known(`console.reason.${reason}`) ? t(`console.reason.${reason}`) : t('reason.other', { reason });
}

/**
 * A change in words: who, where, what.
 * @param {import('./model.js').OutboxEntry} entry
 * @param {{person: string, place: string}} [kept] words kept when the change was refused
 */
function describe(entry, kept) {
  const fields = entry.fields || {};
  const subject = kept || model.subject(entry);
  if (entry.collection === 'enrollments') {
    return t('change.enrollment', { name: subject.person, course: subject.place });
  }
  const what =
    entry.op === 'delete'
      ? t('change.delete')
      : fields.status
        ? t(`status.${fields.status}`)
        : 'note' in fields
          ? `${t('change.note')}: ${fields.note || '—'}`
          : '';
  return t('change.attendance', { name: subject.person, session: subject.place, what });
}

function materialsScreen() {
  const el = h('section');
  const usage = h('p', { class: 'muted', 'data-testid': 'storage' });
  const draw = () => {
    const kept = [...model.view('materials').values()].filter((m) => materials.files.has(m.id));
    replace(
      el,
      h('p', { 'data-testid': 'storage-used' }, t('materials.used', { size: formatBytes(materials.bytesKept()) })),
      usage,
      kept.length === 0 ? h('p', { class: 'empty' }, t('materials.none')) : materialList(kept),
    );
    navigator.storage
      ?.estimate?.()
      .then((estimate) => {
        if (estimate.quota) replace(usage, t('materials.quota', { size: formatBytes(estimate.quota) }));
      })
      .catch(() => {});
  };
  draw();
  return { el, update: draw, title: t('materials.title') };
}

function settingsScreen() {
  const session = /** @type {import('/shared/api.js').Session} */ (api.session);
  const el = h(
    'section',
    { class: 'card' },
    h('p', null, t('settings.account', { name: session.user.display_name, role: t(`role.${session.user.role}`) })),
    h('p', { class: 'muted' }, t('settings.device', { id: session.device_id })),
    languageSwitch(),
    h(
      'button',
      {
        type: 'button',
        class: 'danger',
        onclick: async () => {
          const unsent = sync.sendable().length;
          if (unsent && !confirm(t('settings.sign_out_confirm', { count: unsent }))) return;
          await api.logout();
          render();
        },
      },
      t('settings.sign_out'),
    ),
  );
  return { el, title: t('settings.title') };
}

// A failed sync is shown by the sync status; anything else is a bug worth a line in the console.
window.addEventListener('unhandledrejection', (event) => {
  const reason = event.reason;
  if (reason instanceof ApiError || reason instanceof OfflineError) return;
  console.error(t('error.generic', { message: String(reason) }));
});
