// Courses: the list, create and edit, and a course's pages: sessions timetable, trainers,
// enrollments (search ignoring diacritics, filter by unit and position, many at once), the
// attendance matrix with the 80 % rule, report downloads and the badge sheet.

import { ApiError } from '/shared/api.js';
import { h, replace } from '/shared/dom.js';
import { fold, matchesQuery, personSortKey } from '/shared/fold.js';
import { codeText, formatBytes, formatDate, formatDateTime, formatSpan, t } from '/shared/i18n.js';
import { badgeSheet } from './badges.js';
import { certificates, signInSheet } from './sheets.js';
import { all, apiForm, download, errorBox, errorText, field, formMessage, ifMatch, loading, plansTraining, saveRecord, section, table, tableSection, upload } from './ui.js';

/** @typedef {import('./main.js').Context} Context */
/**
 * @typedef {{id: string, code: string|null, title: string, description: string|null,
 *   organizing_unit_id: string|null, management_level: string, start_date: string, end_date: string,
 *   place: string|null, rev: number}} Course
 * @typedef {{id: string, code: string, name: string, kind: string, parent_id: string|null,
 *   valid_to: string|null}} Unit
 */

const LEVELS = ['province', 'commune', 'central'];
const POSITIONS = ['secretary', 'deputy_secretary', 'committee_member', 'member'];
const STATUSES = ['present', 'late', 'excused', 'absent'];
/** At most this many search results are listed at once (the count says how many matched). */
const SEARCH_SHOWN = 100;

/** @type {Promise<Unit[]>|null} units change rarely: read once per page load */
let unitsLoaded = null;

/** @param {Context} context */
function units(context) {
  if (!unitsLoaded) unitsLoaded = all(context.api, '/api/v1/units');
  unitsLoaded.catch(() => {
    unitsLoaded = null;
  });
  return unitsLoaded;
}

/** @param {Unit[]} list */
function unitsInForce(list) {
  return list.filter((u) => !u.valid_to).sort((a, b) => a.name.localeCompare(b.name, 'vi'));
}

/** @param {Course} course a one-day course shows its day once */
function dates(course) {
  if (course.start_date === course.end_date) return formatDate(course.start_date);
  return t('courses.dates', { start: formatDate(course.start_date), end: formatDate(course.end_date) });
}

/** @param {Context} context */
export function coursesScreen(context) {
  const el = h('div', null, loading());
  all(context.api, '/api/v1/courses').then(
    (/** @type {Course[]} */ courses) => {
      const list = h('div');
      const search = h('input', { id: 'course-search', type: 'search', 'data-testid': 'course-search' });
      const draw = () => {
        const query = /** @type {HTMLInputElement} */ (search).value;
        const shown = courses.filter((c) => matchesQuery(query, fold(`${c.code ?? ''} ${c.title}`)));
        replace(
          list,
          table({
            caption: t('console.nav.courses'),
            testid: 'courses-table',
            rows: shown,
            sortKey: 'start',
            descending: true,
            rowAttrs: (c) => ({ 'data-course': c.id }),
            columns: [
              { key: 'code', label: t('console.course.code'), sort: (c) => c.code ?? '', cell: (c) => c.code ?? '' },
              { key: 'title', label: t('console.course.title'), sort: (c) => c.title, cell: (c) => h('a', { href: `#/courses/${c.id}` }, c.title) },
              { key: 'start', label: t('console.course.dates'), sort: (c) => c.start_date, cell: (c) => dates(c) },
              { key: 'place', label: t('console.course.place'), sort: (c) => c.place ?? '', cell: (c) => c.place ?? '' },
            ],
          }),
        );
      };
      search.addEventListener('input', draw);
      draw();
      replace(
        el,
        h(
          'div',
          { class: 'actions' },
          h('div', { class: 'field inline' }, h('label', { for: 'course-search' }, t('console.course.search')), search),
          plansTraining(context.user) ? h('a', { class: 'button primary', href: '#/courses/new', 'data-testid': 'new-course' }, t('console.course.new')) : null,
        ),
        list,
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: plansTraining(context.user) ? t('console.nav.courses') : t('console.nav.my_courses'), el };
}

/** @param {Context} context */
export function newCourseScreen(context) {
  const el = h('div', null, loading());
  units(context).then(
    (list) => replace(el, courseForm(context, list, null, (course) => context.go(`#/courses/${course.id}/sessions`))),
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.course.new'), el };
}

/**
 * The course's fields; creates (POST) or replaces (PUT with If-Match) it.
 * @param {Context} context
 * @param {Unit[]} unitList
 * @param {Course|null} course
 * @param {(course: Course) => void} done
 */
function courseForm(context, unitList, course, done) {
  const input = (/** @type {string} */ name, /** @type {Record<string, any>} */ attrs = {}) =>
    /** @type {HTMLInputElement} */ (h('input', { 'data-testid': `course-${name}`, ...attrs }));
  const title = input('title', { value: course?.title ?? '', required: true, maxlength: 200 });
  const code = input('code', { value: course?.code ?? '', maxlength: 40 });
  const description = /** @type {HTMLTextAreaElement} */ (h('textarea', { 'data-testid': 'course-description', rows: 3, value: course?.description ?? '' }));
  const unit = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { 'data-testid': 'course-unit' },
      h('option', { value: '' }, t('console.course.no_unit')),
      unitsInForce(unitList).map((u) => h('option', { value: u.id }, u.name)),
    )
  );
  // An organiser's course is organised by a unit of theirs: their own by default.
  unit.value = course?.organizing_unit_id ?? context.user.unit_id ?? '';
  const level = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'course-level' }, LEVELS.map((l) => h('option', { value: l }, t(`console.level.${l}`)))));
  level.value = course?.management_level ?? 'province';
  const start = input('start', { type: 'date', value: course?.start_date ?? '', required: true });
  const end = input('end', { type: 'date', value: course?.end_date ?? '', required: true });
  const place = input('place', { value: course?.place ?? '', maxlength: 200 });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'course-save' }, course ? t('console.save') : t('console.course.create'));
  const form = apiForm(
    context,
    { class: 'form grid', novalidate: true },
    async () => {
      const body = {
        title: title.value.trim(),
        code: code.value.trim() || null,
        description: description.value.trim() || null,
        organizing_unit_id: unit.value || null,
        management_level: level.value,
        start_date: start.value,
        end_date: end.value,
        place: place.value.trim() || null,
      };
      /** @type {HTMLButtonElement} */ (submit).disabled = true;
      try {
        done(await saveRecord(context.api, '/api/v1/courses', course, body));
      } finally {
        /** @type {HTMLButtonElement} */ (submit).disabled = false;
      }
    },
    field(t('console.course.title'), title, 'title'),
    field(t('console.course.code'), code, 'code'),
    field(t('console.course.unit'), unit, 'organizing_unit_id'),
    field(t('console.course.level'), level, 'management_level'),
    field(t('console.course.start'), start, 'start_date'),
    field(t('console.course.end'), end, 'end_date'),
    field(t('console.course.place'), place, 'place'),
    field(t('console.course.description'), description, 'description'),
    formMessage(),
    h('div', { class: 'form-actions' }, submit),
  );
  return form;
}

const TABS = ['overview', 'sessions', 'trainers', 'enrollments', 'attendance', 'materials', 'badges', 'sheets'];

/**
 * A course with its tabs.
 * @param {Context} context
 * @param {string} id
 * @param {string} tab
 */
export function courseScreen(context, id, tab) {
  const el = h('div', null, loading());
  const screen = { title: t('console.course.one'), el };
  context.api.request('GET', `/api/v1/courses/${id}`).then(
    (/** @type {Course} */ course) => {
      document.querySelector('[data-testid=screen-title]')?.replaceChildren(course.title);
      document.title = `${course.title} – ${t('console.name')}`;
      const body = h('div', { class: 'tab-body', 'data-testid': `tab-${tab}` }, loading());
      replace(
        el,
        h('p', { class: 'muted' }, [course.code, dates(course), course.place].filter(Boolean).join(' · ')),
        h(
          'nav',
          { class: 'tabs', 'aria-label': t('console.course.sections') },
          TABS.map((name) =>
            h('a', { href: `#/courses/${id}/${name}`, 'aria-current': name === tab ? 'page' : null, 'data-testid': `tablink-${name}` }, t(`console.tab.${name}`)),
          ),
        ),
        body,
      );
      const fill = {
        overview: overviewTab,
        sessions: sessionsTab,
        trainers: trainersTab,
        enrollments: enrollmentsTab,
        attendance: attendanceTab,
        materials: materialsTab,
        badges: badgesTab,
        sheets: sheetsTab,
      }[tab];
      if (!fill) {
        replace(body, h('p', { class: 'banner' }, t('console.not_found')));
        return;
      }
      fill(context, course, body).catch((error) => replace(body, errorBox(error)));
    },
    (error) => replace(el, errorBox(error)),
  );
  return screen;
}

/**
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function overviewTab(context, course, body) {
  const unitList = await units(context);
  const unitName = unitList.find((u) => u.id === course.organizing_unit_id)?.name ?? t('console.course.no_unit');
  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', null, t('console.course.unit')),
    h('dd', null, unitName),
    h('dt', null, t('console.course.level')),
    h('dd', null, t(`console.level.${course.management_level}`)),
    h('dt', null, t('console.course.description')),
    h('dd', { class: 'pre' }, course.description || '–'),
  );
  replace(
    body,
    facts,
    plansTraining(context.user)
      ? section(
          t('console.course.edit'),
          courseForm(context, unitList, course, () => context.rerender()),
        )
      : null,
  );
}

/**
 * A date and time typed in the browser's own time zone, as RFC 3339 (UTC).
 * @param {string} day `YYYY-MM-DD`
 * @param {string} time `HH:MM`
 */
function instant(day, time) {
  if (!day || !time) return '';
  return new Date(`${day}T${time}`).toISOString();
}

/**
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function sessionsTab(context, course, body) {
  const [sessions, assignments, trainers] = await Promise.all([
    all(context.api, '/api/v1/sessions', { course_id: course.id }),
    all(context.api, '/api/v1/course-trainers', { course_id: course.id }),
    trainerAccounts(context),
  ]);
  const trainerName = (/** @type {string|null} */ id) => (id ? trainers.get(id) ?? nameOf(context, id) : '');
  const plans = plansTraining(context.user);
  // The form of the session being edited, shown between the timetable and the form that adds one.
  const editing = h('div', { 'data-testid': 'session-editing' });
  const edit = (/** @type {any} */ session) => {
    replace(
      editing,
      section(t('console.session.edit', { topic: session.topic }), sessionForm(context, course, assignments, trainerName, session)),
    );
    editing.querySelector('input')?.focus();
  };
  replace(
    body,
    table({
      caption: t('console.tab.sessions'),
      testid: 'sessions-table',
      rows: sessions,
      empty: t('course.no_sessions'),
      sortKey: 'start',
      rowAttrs: (s) => ({ 'data-session': s.id }),
      columns: [
        { key: 'start', label: t('console.session.when'), sort: (s) => s.starts_at, cell: (s) => formatSpan(s.starts_at, s.ends_at) },
        { key: 'topic', label: t('console.session.topic'), sort: (s) => s.topic, cell: (s) => s.topic },
        { key: 'place', label: t('console.course.place'), cell: (s) => s.place ?? '' },
        { key: 'trainer', label: t('console.session.trainer'), cell: (s) => trainerName(s.trainer_id) },
        ...(plans
          ? [
              {
                key: 'remove',
                label: t('console.actions'),
                cell: (/** @type {any} */ s) =>
                  h(
                    'div',
                    { class: 'account-actions' },
                    h('button', { type: 'button', class: 'small', 'data-testid': 'session-edit', onclick: () => edit(s) }, t('console.edit')),
                    h('button', {
                      type: 'button',
                      class: 'danger small',
                      'data-testid': 'session-delete',
                      onclick: () => remove(context, `/api/v1/sessions/${s.id}`, s.rev, body),
                    }, t('console.delete')),
                  ),
              },
            ]
          : []),
      ],
    }),
    editing,
    plans ? section(t('console.session.add'), sessionForm(context, course, assignments, trainerName, null)) : null,
  );
}

/**
 * Deletes a record (with its revision, so a changed record is not deleted blindly) and redraws.
 * @param {Context} context
 * @param {string} path
 * @param {number} rev
 * @param {HTMLElement} near where an error is shown
 */
async function remove(context, path, rev, near) {
  if (!confirm(t('console.confirm_delete'))) return;
  try {
    await context.api.request('DELETE', path, { headers: ifMatch(rev) });
    context.rerender();
  } catch (error) {
    near.prepend(errorBox(error));
  }
}

/**
 * Adds a session (POST) or, given one, replaces it (PUT with `If-Match`, so that a session changed
 * meanwhile is not overwritten blindly: the 412 says so and offers a reload).
 * @param {Context} context
 * @param {Course} course
 * @param {any[]} assignments
 * @param {(id: string|null) => string} trainerName
 * @param {any|null} session the session edited, or null to add one
 */
function sessionForm(context, course, assignments, trainerName, session) {
  const starts = session ? localParts(session.starts_at) : { day: course.start_date, time: '08:00' };
  const ends = session ? localParts(session.ends_at) : { day: course.start_date, time: '11:00' };
  const prefix = session ? 'session-edit' : 'session';
  const topic = h('input', { 'data-testid': `${prefix}-topic`, maxlength: 200, required: true, value: session?.topic ?? '' });
  const day = h('input', { type: 'date', 'data-testid': `${prefix}-day`, value: starts.day, min: course.start_date, max: course.end_date });
  const from = h('input', { type: 'time', 'data-testid': `${prefix}-from`, value: starts.time });
  const to = h('input', { type: 'time', 'data-testid': `${prefix}-to`, value: ends.time });
  const place = h('input', { 'data-testid': `${prefix}-place`, maxlength: 200, value: session ? session.place ?? '' : course.place ?? '' });
  const trainerIds = assignments.map((a) => a.user_id);
  // A session may name a trainer whose assignment ended since: still shown, so that saving keeps it.
  if (session?.trainer_id && !trainerIds.includes(session.trainer_id)) trainerIds.push(session.trainer_id);
  const trainer = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { 'data-testid': `${prefix}-trainer` },
      h('option', { value: '' }, t('console.session.no_trainer')),
      trainerIds.map((id) => h('option', { value: id }, trainerName(id))),
    )
  );
  // A new session is taught by the course's lead trainer unless another is chosen.
  trainer.value = session ? session.trainer_id ?? '' : assignments.find((a) => a.role === 'lead')?.user_id ?? '';
  const value = (/** @type {HTMLElement} */ el) => /** @type {HTMLInputElement} */ (el).value;
  const form = apiForm(
    context,
    { class: 'form grid', novalidate: true, 'data-testid': `${prefix}-form` },
    async () => {
      const fields = {
        course_id: course.id,
        topic: value(topic).trim(),
        starts_at: instant(value(day), value(from)),
        ends_at: instant(value(day), value(to)),
        place: value(place).trim() || null,
        trainer_id: value(trainer) || null,
      };
      await saveRecord(context.api, '/api/v1/sessions', session, fields);
      context.rerender();
    },
    field(t('console.session.topic'), topic, 'topic'),
    field(t('console.session.day'), day, 'starts_at'),
    field(t('console.session.from'), from, 'starts_at_time'),
    field(t('console.session.to'), to, 'ends_at'),
    field(t('console.course.place'), place, 'place'),
    field(t('console.session.trainer'), trainer, 'trainer_id'),
    formMessage(),
    h(
      'div',
      { class: 'form-actions' },
      h('button', { type: 'submit', class: 'primary', 'data-testid': session ? 'session-edit-save' : 'session-add' }, session ? t('console.save') : t('console.session.add')),
      session ? h('button', { type: 'button', 'data-testid': 'session-edit-cancel', onclick: () => form.closest('[data-testid=session-editing]')?.replaceChildren() }, t('console.cancel')) : null,
    ),
  );
  return form;
}

/**
 * An instant as the day and time it is in the browser's time zone (what the form shows).
 * @param {string} iso RFC 3339
 */
function localParts(iso) {
  const at = new Date(iso);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return { day: `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}`, time: `${two(at.getHours())}:${two(at.getMinutes())}` };
}

/**
 * Trainer accounts by id with their names: administrators and organisers read the accounts (an
 * organiser those of their unit's people); a trainer knows only their own name (the API shows
 * them no other account).
 * @param {Context} context
 * @returns {Promise<Map<string, string>>}
 */
async function trainerAccounts(context) {
  if (!plansTraining(context.user)) return new Map([[context.user.id, context.user.display_name]]);
  const accounts = await all(context.api, '/api/v1/users', { role: 'trainer' });
  return new Map(accounts.map((a) => [a.id, `${a.display_name} (${a.username})`]));
}

/**
 * @param {Context} context
 * @param {string} id
 */
function nameOf(context, id) {
  return id === context.user.id ? context.user.display_name : t('console.other_trainer');
}

/**
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function trainersTab(context, course, body) {
  const [assignments, trainers] = await Promise.all([all(context.api, '/api/v1/course-trainers', { course_id: course.id }), trainerAccounts(context)]);
  const plans = plansTraining(context.user);
  const assigned = new Set(assignments.map((a) => a.user_id));
  const choice = h('select', { 'data-testid': 'trainer-choice' }, [...trainers].filter(([id]) => !assigned.has(id)).map(([id, name]) => h('option', { value: id }, name)));
  const role = h('select', { 'data-testid': 'trainer-role' }, ['lead', 'assistant'].map((r) => h('option', { value: r }, t(`console.trainer_role.${r}`))));
  const form = apiForm(
    context,
    { class: 'form grid' },
    async () => {
      await context.api.request('POST', '/api/v1/course-trainers', {
        body: { course_id: course.id, user_id: /** @type {HTMLSelectElement} */ (choice).value, role: /** @type {HTMLSelectElement} */ (role).value },
      });
      context.rerender();
    },
    field(t('console.trainer.account'), choice, 'user_id'),
    field(t('console.trainer.role'), role, 'role'),
    formMessage(),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'trainer-assign' }, t('console.trainer.assign'))),
  );
  replace(
    body,
    table({
      caption: t('console.tab.trainers'),
      testid: 'trainers-table',
      rows: assignments,
      rowAttrs: (a) => ({ 'data-user': a.user_id }),
      columns: [
        { key: 'name', label: t('console.trainer.account'), sort: (a) => trainers.get(a.user_id) ?? '', cell: (a) => trainers.get(a.user_id) ?? nameOf(context, a.user_id) },
        { key: 'role', label: t('console.trainer.role'), sort: (a) => a.role, cell: (a) => t(`console.trainer_role.${a.role}`) },
        ...(plans
          ? [{ key: 'remove', label: t('console.actions'), cell: (/** @type {any} */ a) => h('button', { type: 'button', class: 'danger small', onclick: () => remove(context, `/api/v1/course-trainers/${a.id}`, a.rev, body) }, t('console.unassign')) }]
          : []),
      ],
    }),
    plans ? section(t('console.trainer.assign'), form) : null,
  );
}

/**
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function enrollmentsTab(context, course, body) {
  const [enrollments, people, unitList] = await Promise.all([
    all(context.api, '/api/v1/enrollments', { course_id: course.id }),
    all(context.api, '/api/v1/people', { course_id: course.id }),
    units(context),
  ]);
  const unitName = new Map(unitList.map((u) => [u.id, u.name]));
  const byId = new Map(people.map((p) => [p.id, p]));
  const current = enrollments.filter((e) => e.status !== 'withdrawn');
  const rows = current.map((e) => ({ enrollment: e, person: byId.get(e.person_id) }));
  replace(
    body,
    tableSection({
      caption: t('console.enroll.enrolled', { count: current.length }),
      testid: 'enrolled-table',
      rows,
      sortKey: 'name',
      rowAttrs: (r) => ({ 'data-person': r.enrollment.person_id }),
      columns: [
        { key: 'name', label: t('console.person.name'), sort: (r) => personSortKey(r.person?.full_name ?? ''), cell: (r) => r.person?.full_name ?? '' },
        { key: 'position', label: t('console.person.position'), sort: (r) => r.person?.position ?? '', cell: (r) => (r.person ? t(`position.${r.person.position}`) : '') },
        { key: 'unit', label: t('console.unit'), sort: (r) => unitName.get(r.person?.unit_id) ?? '', cell: (r) => unitName.get(r.person?.unit_id) ?? '' },
        { key: 'status', label: t('console.enroll.status'), sort: (r) => r.enrollment.status, cell: (r) => t(`console.enrollment.${r.enrollment.status}`) },
        {
          key: 'withdraw',
          label: t('console.actions'),
          cell: (r) =>
            h('button', {
              type: 'button',
              class: 'small',
              onclick: async () => {
                if (!confirm(t('console.enroll.confirm_withdraw', { name: r.person?.full_name ?? '' }))) return;
                try {
                  await context.api.request('PUT', `/api/v1/enrollments/${r.enrollment.id}`, {
                    body: { course_id: course.id, person_id: r.enrollment.person_id, status: 'withdrawn' },
                    headers: ifMatch(r.enrollment.rev),
                  });
                  context.rerender();
                } catch (error) {
                  body.prepend(errorBox(error));
                }
              },
            }, t('console.enroll.withdraw')),
        },
      ],
    }),
    section(t('console.enroll.add'), enrollSearch(context, course, unitList)),
  );
}

/**
 * Finds people of the course's roster by name (with or without diacritics), unit and position,
 * and enrolls the ones ticked, many at once.
 * @param {Context} context
 * @param {Course} course
 * @param {Unit[]} unitList
 */
function enrollSearch(context, course, unitList) {
  const unitName = new Map(unitList.map((u) => [u.id, u.name]));
  const query = /** @type {HTMLInputElement} */ (h('input', { type: 'search', 'data-testid': 'enroll-search', autocomplete: 'off' }));
  const unit = /** @type {HTMLSelectElement} */ (
    h('select', { 'data-testid': 'enroll-unit' }, h('option', { value: '' }, t('console.all_units')), unitsInForce(unitList).map((u) => h('option', { value: u.id }, u.name)))
  );
  const position = /** @type {HTMLSelectElement} */ (
    h('select', { 'data-testid': 'enroll-position' }, h('option', { value: '' }, t('console.all_positions')), POSITIONS.map((p) => h('option', { value: p }, t(`position.${p}`))))
  );
  /** @type {Set<string>} */
  const chosen = new Set();
  /** @type {any[]} */
  let found = [];
  const results = h('div', { 'data-testid': 'enroll-results', 'aria-live': 'polite' });
  const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'enroll-status' });
  const submit = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary', 'data-testid': 'enroll-submit', disabled: true }, t('console.enroll.submit', { count: 0 })));
  const drawButton = () => {
    submit.disabled = chosen.size === 0;
    replace(submit, t('console.enroll.submit', { count: chosen.size }));
  };
  const drawResults = () => {
    const shown = found.filter((p) => (!unit.value || p.unit_id === unit.value) && (!position.value || p.position === position.value));
    const listed = shown.slice(0, SEARCH_SHOWN);
    const everyone = h('input', {
      type: 'checkbox',
      id: 'enroll-all',
      'data-testid': 'enroll-all',
      checked: listed.length > 0 && listed.every((p) => chosen.has(p.id)),
      onchange: (/** @type {Event} */ e) => {
        const on = /** @type {HTMLInputElement} */ (e.target).checked;
        for (const p of listed) on ? chosen.add(p.id) : chosen.delete(p.id);
        drawResults();
      },
    });
    replace(
      results,
      h('p', { class: 'muted small' }, t('console.enroll.found', { shown: listed.length, total: shown.length })),
      listed.length ? h('div', { class: 'check-all' }, everyone, h('label', { for: 'enroll-all' }, t('console.enroll.all_shown'))) : null,
      h(
        'ul',
        { class: 'pick-list' },
        listed.map((p) => {
          const id = `pick-${p.id}`;
          return h(
            'li',
            { 'data-person': p.id },
            h('input', {
              type: 'checkbox',
              id,
              checked: chosen.has(p.id),
              onchange: (/** @type {Event} */ e) => {
                if (/** @type {HTMLInputElement} */ (e.target).checked) chosen.add(p.id);
                else chosen.delete(p.id);
                drawButton();
              },
            }),
            h('label', { for: id }, h('span', { class: 'name' }, p.full_name), h('span', { class: 'muted small' }, ` ${t(`position.${p.position}`)} · ${unitName.get(p.unit_id) ?? ''}`)),
          );
        }),
      ),
    );
    drawButton();
  };
  let asked = 0;
  const searchNow = async () => {
    const ask = (asked += 1);
    try {
      const page = await context.api.request('GET', `/api/v1/courses/${course.id}/roster`, { query: { q: query.value.trim() || undefined, limit: 500 } });
      if (ask !== asked) return;
      // In roster order (given name first), as the sheets and the roll list people.
      found = page.items.sort((/** @type {any} */ a, /** @type {any} */ b) => personSortKey(a.full_name).localeCompare(personSortKey(b.full_name)));
      drawResults();
    } catch (error) {
      replace(results, errorBox(error));
    }
  };
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let typing;
  query.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(searchNow, 250);
  });
  unit.addEventListener('change', drawResults);
  position.addEventListener('change', drawResults);
  submit.addEventListener('click', async () => {
    submit.disabled = true;
    const ids = [...chosen];
    let done = 0;
    const failed = [];
    for (const personId of ids) {
      try {
        await context.api.request('POST', '/api/v1/enrollments', { body: { course_id: course.id, person_id: personId } });
        done += 1;
        chosen.delete(personId);
      } catch (error) {
        failed.push(`${found.find((p) => p.id === personId)?.full_name ?? personId}: ${error instanceof ApiError ? codeText(error.code, error.message) : String(error)}`);
      }
      replace(status, t('console.enroll.progress', { done, total: ids.length }));
    }
    if (failed.length) {
      replace(status, h('span', { class: 'error', role: 'alert' }, t('console.enroll.failed', { done, failed: failed.join('; ') })));
      drawButton();
    } else {
      context.rerender();
    }
  });
  searchNow();
  return h(
    'div',
    { class: 'enroll' },
    h(
      'div',
      { class: 'filters' },
      field(t('console.enroll.search'), query, 'q'),
      field(t('console.unit'), unit, 'unit_id'),
      field(t('console.person.position'), position, 'position'),
    ),
    results,
    h('div', { class: 'form-actions' }, submit, status),
  );
}

/**
 * The course report as a matrix: a row per trainee, a column per session, each cell the status
 * in colour and in text; totals per session; completers by the report's rule.
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function attendanceTab(context, course, body) {
  const report = await context.api.request('GET', `/api/v1/reports/courses/${course.id}`);
  const sessions = /** @type {{id: string, topic: string, starts_at: string}[]} */ (report.sessions);
  const trainees = /** @type {any[]} */ (report.trainees);
  const attendedAt = sessions.map((_, index) => trainees.filter((p) => report.rule.statuses.includes(p.statuses[index])).length);
  const legend = h(
    'ul',
    { class: 'legend', 'aria-label': t('console.matrix.legend') },
    STATUSES.map((s) => h('li', null, h('span', { class: `cell status-${s}` }, t(`console.status_code.${s}`)), ' ', t(`status.${s}`))),
    h('li', null, h('span', { class: 'cell status-none' }, '–'), ' ', t('console.matrix.none')),
  );
  const matrix = h(
    'table',
    { class: 'matrix', 'data-testid': 'attendance-matrix' },
    h('caption', { class: 'visually-hidden' }, t('console.tab.attendance')),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, t('console.person.name')),
        h('th', { scope: 'col' }, t('console.unit')),
        sessions.map((s, i) => h('th', { scope: 'col', title: `${s.topic} · ${formatDateTime(s.starts_at)}`, class: 'session-col' }, h('abbr', { title: s.topic }, `${i + 1}`), h('span', { class: 'small muted block' }, formatDateTime(s.starts_at)))),
        h('th', { scope: 'col', class: 'num' }, t('console.matrix.attended')),
        h('th', { scope: 'col', class: 'num' }, t('console.matrix.rate')),
        h('th', { scope: 'col' }, t('console.matrix.completed')),
      ),
    ),
    h(
      'tbody',
      null,
      trainees.map((p) =>
        h(
          'tr',
          { 'data-person': p.person_id, 'data-completed': String(p.completed) },
          h('th', { scope: 'row' }, p.full_name),
          h('td', { class: 'unit' }, p.current_unit_name ?? p.unit_name ?? ''),
          p.statuses.map((/** @type {string|null} */ s, /** @type {number} */ i) =>
            h('td', { class: `cell status-${s ?? 'none'}`, 'data-status': s ?? '', title: `${sessions[i].topic}: ${s ? t(`status.${s}`) : t('console.matrix.none')}` }, s ? t(`console.status_code.${s}`) : '–'),
          ),
          h('td', { class: 'num' }, `${p.attended}/${sessions.length}`),
          h('td', { class: 'num' }, p.rate === null ? '–' : `${Math.round(p.rate)} %`),
          h('td', null, p.completed ? t('console.matrix.yes') : t('console.matrix.no')),
        ),
      ),
    ),
    h(
      'tfoot',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'row', colspan: '2' }, t('console.matrix.totals')),
        attendedAt.map((count) => h('td', { class: 'num', 'data-testid': 'session-total' }, `${count}/${trainees.length}`)),
        h('td', { colspan: '3', 'data-testid': 'completers' }, t('console.matrix.completers', { count: report.completed.length, total: trainees.length })),
      ),
    ),
  );
  const report_ = (/** @type {'csv'|'xlsx'} */ format) =>
    h('button', {
      type: 'button',
      'data-testid': `course-report-${format}`,
      onclick: () => download(context.api, `/api/v1/reports/courses/${course.id}`, { format }, `${course.code ?? course.id}.${format}`).catch((e) => body.prepend(errorBox(e))),
    }, format === 'csv' ? t('console.download_csv') : t('console.download_xlsx'));
  replace(
    body,
    h('p', null, t('console.matrix.rule', { rate: report.rule.min_rate, statuses: report.rule.statuses.map((/** @type {string} */ s) => t(`status.${s}`)).join(', ') })),
    h('div', { class: 'actions' }, report_('csv'), report_('xlsx')),
    legend,
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': t('console.tab.attendance') }, matrix),
  );
}

/**
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function badgesTab(context, course, body) {
  const [enrollments, people, unitList] = await Promise.all([
    all(context.api, '/api/v1/enrollments', { course_id: course.id }),
    all(context.api, '/api/v1/people', { course_id: course.id }),
    units(context),
  ]);
  const trainees = rosterOf(enrollments, people, unitList);
  replace(
    body,
    h('div', { class: 'actions no-print' }, h('p', null, t('console.badges.explain', { count: trainees.length })), h('button', { type: 'button', class: 'primary', onclick: () => window.print() }, t('console.badges.print'))),
    badgeSheet(course.title, trainees),
  );
}

/**
 * What the course carries: its materials with their versions, downloaded with the token,
 * uploaded (or replaced by a new version) with a progress bar, deleted.
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function materialsTab(context, course, body) {
  const materials = await all(context.api, '/api/v1/materials', { course_id: course.id });
  const plans = plansTraining(context.user);
  const progress = /** @type {HTMLProgressElement} */ (h('progress', { max: 100, value: 0, hidden: true, 'aria-label': t('console.materials.progress'), 'data-testid': 'material-progress' }));
  const status = h('p', { role: 'status', class: 'muted', 'data-testid': 'material-status' });
  /**
   * @param {File} file
   * @param {any} [replacing] the material that gets a new version
   */
  const send = async (file, replacing) => {
    progress.hidden = false;
    progress.value = 0;
    replace(status, t('console.import.sending', { name: file.name }));
    try {
      await upload(
        context.api,
        replacing ? 'PUT' : 'POST',
        replacing ? `/api/v1/materials/${replacing.id}/content` : `/api/v1/courses/${course.id}/materials`,
        { file_name: file.name },
        file,
        (sent, total) => (progress.value = Math.round((sent / total) * 100)),
        file.type || 'application/octet-stream',
        replacing ? ifMatch(replacing.rev) : {},
      );
      progress.value = 100;
      context.rerender();
    } catch (error) {
      replace(status, h('span', { class: 'error' }, errorText(error)));
    }
  };
  const picker = /** @type {HTMLInputElement} */ (h('input', { type: 'file', 'data-testid': 'material-file' }));
  replace(
    body,
    table({
      caption: t('console.tab.materials'),
      testid: 'materials-table',
      rows: materials,
      empty: t('course.no_materials'),
      sortKey: 'title',
      rowAttrs: (m) => ({ 'data-material': m.id }),
      columns: [
        { key: 'title', label: t('console.materials.title'), sort: (m) => m.title, cell: (m) => m.title },
        { key: 'file', label: t('console.materials.file'), sort: (m) => m.file_name, cell: (m) => m.file_name },
        { key: 'size', label: t('console.materials.size'), numeric: true, sort: (m) => m.size_bytes ?? 0, cell: (m) => (m.size_bytes === null ? '–' : formatBytes(m.size_bytes)) },
        { key: 'version', label: t('console.materials.version'), numeric: true, sort: (m) => m.version ?? 0, cell: (m) => m.version ?? '–' },
        {
          key: 'actions',
          label: t('console.actions'),
          cell: (m) =>
            h(
              'div',
              { class: 'account-actions' },
              h('button', {
                type: 'button',
                class: 'small',
                'data-testid': 'material-download',
                onclick: () => download(context.api, `/api/v1/materials/${m.id}/content`, {}, m.file_name).catch((e) => body.prepend(errorBox(e))),
              }, t('console.materials.download')),
              plans
                ? h('label', { class: 'button small' }, t('console.materials.new_version'), h('input', {
                    type: 'file',
                    class: 'visually-hidden',
                    'data-testid': 'material-version',
                    onchange: (/** @type {Event} */ e) => {
                      const file = /** @type {HTMLInputElement} */ (e.target).files?.[0];
                      if (file) send(file, m);
                    },
                  }))
                : null,
              plans ? h('button', { type: 'button', class: 'danger small', 'data-testid': 'material-delete', onclick: () => remove(context, `/api/v1/materials/${m.id}`, m.rev, body) }, t('console.delete')) : null,
            ),
        },
      ],
    }),
    plans
      ? section(
          t('console.materials.upload'),
          h(
            'div',
            { class: 'form-actions' },
            field(t('console.materials.pick'), picker, 'file'),
            h('button', {
              type: 'button',
              class: 'primary',
              'data-testid': 'material-upload',
              onclick: () => {
                const file = picker.files?.[0];
                if (file) send(file);
                else replace(status, h('span', { class: 'error' }, t('console.import.pick')));
              },
            }, t('console.materials.upload')),
            progress,
          ),
          status,
        )
      : null,
  );
}

/**
 * The class sign-in sheet of a chosen session and the certificates of the completers, printed by
 * the browser.
 * @param {Context} context
 * @param {Course} course
 * @param {HTMLElement} body
 */
async function sheetsTab(context, course, body) {
  const [sessions, enrollments, people, unitList, report] = await Promise.all([
    all(context.api, '/api/v1/sessions', { course_id: course.id }),
    all(context.api, '/api/v1/enrollments', { course_id: course.id }),
    all(context.api, '/api/v1/people', { course_id: course.id }),
    units(context),
    context.api.request('GET', `/api/v1/reports/courses/${course.id}`),
  ]);
  const trainees = rosterOf(enrollments, people, unitList);
  sessions.sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  const sheet = h('div', { class: 'sheet-area' });
  const choice = /** @type {HTMLSelectElement} */ (
    h('select', { 'data-testid': 'sheet-session' }, sessions.map((s) => h('option', { value: s.id }, `${formatSpan(s.starts_at, s.ends_at)} · ${s.topic}`)))
  );
  const showSignIn = () => {
    const session = sessions.find((s) => s.id === choice.value);
    replace(sheet, session ? signInSheet(course, session, trainees) : null);
  };
  choice.addEventListener('change', showSignIn);
  replace(
    body,
    h(
      'div',
      { class: 'no-print' },
      h('p', { class: 'muted' }, t('console.sheets.explain')),
      h(
        'div',
        { class: 'actions' },
        field(t('console.sheets.pick_session'), choice, 'session_id'),
        h('button', { type: 'button', 'data-testid': 'show-signin', onclick: showSignIn }, t('console.sheets.show_signin')),
        h('button', {
          type: 'button',
          'data-testid': 'show-certificates',
          onclick: () => replace(sheet, report.completed.length ? certificates(course, report.completed) : h('p', null, t('console.sheets.no_completers'))),
        }, t('console.sheets.show_certificates', { count: report.completed.length })),
        h('button', { type: 'button', class: 'primary', onclick: () => window.print() }, t('console.sheets.print')),
      ),
    ),
    sheet,
  );
  showSignIn();
}

/**
 * The enrolled trainees in roster order (given name first), with position and unit names.
 * @param {any[]} enrollments
 * @param {any[]} people
 * @param {Unit[]} unitList
 */
function rosterOf(enrollments, people, unitList) {
  const enrolled = new Set(enrollments.filter((e) => e.status !== 'withdrawn').map((e) => e.person_id));
  const unitName = new Map(unitList.map((u) => [u.id, u.name]));
  return people
    .filter((p) => enrolled.has(p.id))
    .sort((a, b) => personSortKey(a.full_name).localeCompare(personSortKey(b.full_name)))
    .map((p) => ({ id: p.id, name: p.full_name, position: t(`position.${p.position}`), unit: unitName.get(p.unit_id) ?? '' }));
}
