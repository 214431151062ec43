// Yearly training plans: the list of the plans the caller manages, and a plan's progress ("Kế
// hoạch và kết quả bồi dưỡng") as the report gives it: trained against the share to train, per
// unit, the plans of the units below with their sum, who is not trained yet, the planned courses
// and the year's merges and renames; the report's files. An admin or an organiser writes a plan
// in the page: a unit among those they manage, the year, the target groups (branch secretaries
// and "newly elected this term" included), the share, the rule and the planned courses with
// their dates (among the courses they see); edited with If-Match, deleted after a confirmation.

import { h, replace } from '/shared/dom.js';
import { formatDate, t } from '/shared/i18n.js';
import { all, apiForm, dateInWords, downloadButton, errorBox, field, formMessage, ifMatch, loading, saveRecord, section, table, tableSection } from './ui.js';
import { percentText, tile } from './dashboard.js';

/** @typedef {import('./main.js').Context} Context */

/**
 * @typedef {{kind: 'course_completion', min_rate: number} |
 *   {kind: 'sessions_on_topics', min_sessions: number, topics: string[]}} PlanRule
 * @typedef {{course_id: string, planned_start: string, planned_end: string}} PlannedCourse
 * @typedef {{id: string, unit_id: string, year: number, title: string, target_positions: string[],
 *   elected_since: string|null, target_percent: number, rule: PlanRule, courses: PlannedCourse[],
 *   rev: number}} Plan
 * @typedef {{id: string, name: string, kind: string, parent_id: string|null,
 *   merged_into_id: string|null, valid_to: string|null}} Unit
 * @typedef {{id: string, title: string, code: string|null, start_date: string}} CourseItem
 */

/** The positions a plan may target, in the order the form shows them. */
const POSITIONS = ['secretary', 'deputy_secretary', 'committee_member', 'member', 'branch_secretary', 'branch_deputy_secretary'];
const RULES = ['course_completion', 'sessions_on_topics'];

/**
 * @typedef {{target: number, required: number, trained: number, not_trained: number,
 *   percent: number|null, met: boolean}} PlanProgress
 * @typedef {{person_id: string, full_name: string, position: string, phone: string|null,
 *   unit_id: string, unit_name: string}} TargetPerson
 * @typedef {{plan: {id: string, title: string, year: number, target_percent: number, rev: number,
 *     elected_since: string|null},
 *   unit: {id: string, name: string, in_force: boolean, merged_into_name: string|null},
 *   progress: PlanProgress,
 *   units: {unit_id: string, name: string, depth: number, target: number, trained: number,
 *     not_trained: number, percent: number|null}[],
 *   trained: TargetPerson[], not_trained: TargetPerson[],
 *   courses: {course_id: string, title: string, planned_start: string, planned_end: string,
 *     held: boolean}[],
 *   courses_not_held: number,
 *   unit_plans: {plan_id: string, title: string, unit_name: string, unit_in_force: boolean,
 *     progress: PlanProgress}[],
 *   unit_plans_total: PlanProgress,
 *   changes: {date: string, kind: 'merge'|'rename'|'person_moved', unit_name: string, new_name: string|null,
 *     people_moved: string[]}[]}} PlanReport
 */

const PLANS = '/api/v1/training-plans';
const REPORT = '/api/v1/reports/training-plans';

/** @param {PlanProgress} progress */
function countText(progress) {
  return t('console.coverage.count', { trained: progress.trained, cadres: progress.target, percent: percentText(progress.percent) });
}

/** @param {Context} context */
export function plansScreen(context) {
  const el = h('div', null, loading());
  Promise.all([
    context.api.request('GET', PLANS, { query: { limit: 500 } }),
    context.api.request('GET', '/api/v1/units', { query: { limit: 500 } }),
  ]).then(
    ([plans, units]) => {
      /** @type {Map<string, string>} */
      const names = new Map(units.items.map((/** @type {{id: string, name: string}} */ u) => [u.id, u.name]));
      replace(
        el,
        h('p', { class: 'muted' }, t('console.plans.explain')),
        h('div', { class: 'actions' }, h('a', { href: '#/plans/new', class: 'button primary', 'data-testid': 'new-plan' }, t('console.plans.new'))),
        table({
          caption: t('console.nav.plans'),
          testid: 'plans-table',
          rows: plans.items,
          sortKey: 'year',
          descending: true,
          empty: t('console.plans.empty'),
          rowAttrs: (p) => ({ 'data-plan': p.id }),
          columns: [
            { key: 'year', label: t('console.plans.year'), numeric: true, sort: (p) => p.year, cell: (p) => String(p.year) },
            { key: 'title', label: t('console.plans.plan'), sort: (p) => p.title, cell: (p) => h('a', { href: `#/plans/${p.id}` }, p.title) },
            { key: 'unit', label: t('console.unit'), sort: (p) => names.get(p.unit_id) ?? '', cell: (p) => names.get(p.unit_id) ?? '' },
            { key: 'share', label: t('console.plans.share'), numeric: true, sort: (p) => p.target_percent, cell: (p) => `${p.target_percent} %` },
          ],
        }),
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.nav.plans'), el };
}

/**
 * @param {Context} context
 * @param {string} id
 * @param {'csv'|'xlsx'} format
 * @param {string} label
 */
function planDownload(context, id, format, label) {
  return downloadButton(context.api, {
    testid: `plan-${format}`,
    path: `${REPORT}/${id}`,
    query: { format },
    filename: `ke-hoach.${format}`,
    label,
  });
}

/** @param {PlanProgress} progress */
function metText(progress) {
  return progress.met ? t('console.plans.met_yes') : t('console.plans.met_no');
}

/** @param {PlanReport['changes'][number]} change */
function changeText(change) {
  const date = formatDate(change.date);
  const names = { date, unit: change.unit_name, target: change.new_name ?? '' };
  if (change.kind === 'merge') return t('console.plans.change_merge', { ...names, count: change.people_moved.length });
  if (change.kind === 'rename') return t('console.plans.change_rename', names);
  return t('console.plans.change_person', { ...names, name: change.people_moved.join(', ') });
}

/**
 * Deletes the plan (with its revision) after a confirmation, then goes back to the list.
 * @param {Context} context
 * @param {{id: string, rev: number, title: string}} plan
 */
function deleteButton(context, plan) {
  const button = h('button', {
    type: 'button',
    class: 'danger',
    'data-testid': 'plan-delete',
    onclick: async () => {
      if (!confirm(t('console.plans.confirm_delete', { title: plan.title }))) return;
      try {
        await context.api.request('DELETE', `${PLANS}/${plan.id}`, { headers: ifMatch(plan.rev) });
        context.go('#/plans');
      } catch (error) {
        button.after(errorBox(error));
      }
    },
  }, t('console.plans.delete'));
  return button;
}

/**
 * The units a plan may belong to: those in force the caller manages (an organiser's unit and the
 * units below it; the server decides, this only offers them), by name.
 * @param {Context} context
 * @param {Unit[]} units
 */
function plannableUnits(context, units) {
  const inForce = units.filter((u) => !u.merged_into_id && !u.valid_to);
  const root = context.user.role === 'admin' ? null : context.user.unit_id;
  if (!root) return inForce.sort((a, b) => a.name.localeCompare(b.name, 'vi'));
  /** @type {Map<string, Unit[]>} */
  const below = new Map();
  for (const u of inForce) {
    if (!u.parent_id) continue;
    below.set(u.parent_id, [...(below.get(u.parent_id) ?? []), u]);
  }
  /** @type {Unit[]} */
  const found = [];
  const next = inForce.filter((u) => u.id === root);
  while (next.length) {
    const unit = /** @type {Unit} */ (next.pop());
    found.push(unit);
    next.push(...(below.get(unit.id) ?? []));
  }
  return found.sort((a, b) => (a.id === root ? -1 : b.id === root ? 1 : a.name.localeCompare(b.name, 'vi')));
}

/**
 * A unit as the form offers it: a branch with its ward or commune (two wards may each have a
 * "Chi đoàn Tổ dân phố 1").
 * @param {Unit} unit
 * @param {Map<string, string>} names
 */
function unitLabel(unit, names) {
  const parent = unit.parent_id ? names.get(unit.parent_id) : undefined;
  return unit.kind === 'branch' && parent ? `${unit.name} – ${parent}` : unit.name;
}

/**
 * A new plan.
 * @param {Context} context
 */
export function newPlanScreen(context) {
  const el = h('div', null, loading());
  Promise.all([all(context.api, '/api/v1/units'), all(context.api, '/api/v1/courses')]).then(
    ([units, courses]) => replace(el, h('p', null, h('a', { href: '#/plans' }, t('console.plans.back'))), planForm(context, units, courses, null)),
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.plans.new'), el };
}

/**
 * A plan edited.
 * @param {Context} context
 * @param {string} id
 */
export function editPlanScreen(context, id) {
  const el = h('div', null, loading());
  Promise.all([context.api.request('GET', `${PLANS}/${id}`), all(context.api, '/api/v1/units'), all(context.api, '/api/v1/courses')]).then(
    ([plan, units, courses]) => {
      document.querySelector('[data-testid=screen-title]')?.replaceChildren(plan.title);
      replace(el, h('p', null, h('a', { href: `#/plans/${id}` }, t('console.plans.back_to_plan'))), planForm(context, units, courses, plan));
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.plans.edit'), el };
}

/**
 * The plan's fields; creates (POST) or replaces (PUT with If-Match) it, then shows its progress.
 * @param {Context} context
 * @param {Unit[]} units
 * @param {CourseItem[]} courses the courses the caller sees
 * @param {Plan|null} plan
 */
function planForm(context, units, courses, plan) {
  const input = (/** @type {string} */ name, /** @type {Record<string, any>} */ attrs = {}) =>
    /** @type {HTMLInputElement} */ (h('input', { 'data-testid': `plan-${name}`, ...attrs }));
  /** @type {Map<string, string>} */
  const names = new Map(units.map((u) => [u.id, u.name]));
  const unit = /** @type {HTMLSelectElement} */ (
    h('select', { 'data-testid': 'plan-unit' }, plannableUnits(context, units).map((u) => h('option', { value: u.id }, unitLabel(u, names))))
  );
  if (plan) unit.value = plan.unit_id;
  const year = input('year', { type: 'number', min: 2000, max: 2100, required: true, value: String(plan?.year ?? new Date().getFullYear()) });
  const title = input('title', { value: plan?.title ?? '', required: true, maxlength: 200 });
  const positions = POSITIONS.map((p) => {
    const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', value: p, 'data-testid': `plan-position-${p}` }));
    box.checked = plan?.target_positions.includes(p) ?? false;
    return box;
  });
  const positionGroup = h(
    'fieldset',
    { class: 'field checks', 'data-field': 'target_positions' },
    h('legend', null, t('console.plans.positions')),
    positions.map((box) => h('label', { class: 'check' }, box, ' ', t(`position.${box.value}`))),
    h('p', { class: 'field-error error', 'data-error-for': 'target_positions', hidden: true }),
  );
  const electedOnly = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', 'data-testid': 'plan-elected-only' }));
  electedOnly.checked = Boolean(plan?.elected_since);
  const electedSince = input('elected-since', { type: 'date', value: plan?.elected_since ?? '' });
  const electedField = field(t('console.plans.elected_since'), electedSince, 'elected_since');
  electedField.hidden = !electedOnly.checked;
  electedOnly.addEventListener('change', () => {
    electedField.hidden = !electedOnly.checked;
  });
  const share = input('share', { type: 'number', min: 1, max: 100, required: true, value: String(plan?.target_percent ?? 100) });
  const ruleKind = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'plan-rule' }, RULES.map((r) => h('option', { value: r }, t(`console.plans.rule_${r}`)))));
  ruleKind.value = plan?.rule.kind ?? 'course_completion';
  const minRate = input('min-rate', { type: 'number', min: 1, max: 100, value: String(plan?.rule.kind === 'course_completion' ? plan.rule.min_rate : 80) });
  const minSessions = input('min-sessions', { type: 'number', min: 1, max: 1000, value: String(plan?.rule.kind === 'sessions_on_topics' ? plan.rule.min_sessions : 1) });
  const topics = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { 'data-testid': 'plan-topics', rows: 3, value: plan?.rule.kind === 'sessions_on_topics' ? plan.rule.topics.join('\n') : '' })
  );
  const rateField = field(t('console.plans.min_rate'), minRate, 'rule.min_rate');
  const sessionFields = [field(t('console.plans.min_sessions'), minSessions, 'rule.min_sessions'), field(t('console.plans.topics'), topics, 'rule.topics')];
  const showRule = () => {
    const topical = ruleKind.value === 'sessions_on_topics';
    rateField.hidden = topical;
    for (const f of sessionFields) f.hidden = !topical;
  };
  ruleKind.addEventListener('change', showRule);
  showRule();

  /** @type {Map<string, CourseItem>} */
  const seen = new Map(courses.map((c) => [c.id, c]));
  const rows = h('tbody', { 'data-testid': 'plan-course-rows' });
  const addRow = (/** @type {PlannedCourse|null} */ planned) => {
    const index = rows.children.length;
    const choice = /** @type {HTMLSelectElement} */ (
      h(
        'select',
        { 'data-testid': 'plan-course', 'aria-label': t('console.plans.course') },
        courses
          .slice()
          .sort((a, b) => a.title.localeCompare(b.title, 'vi'))
          .map((c) => h('option', { value: c.id }, c.code ? `${c.code} – ${c.title}` : c.title)),
        // A class the plan already names but the caller does not see (a higher level's) stays.
        planned && !seen.has(planned.course_id) ? h('option', { value: planned.course_id }, t('console.plans.course_not_seen')) : null,
      )
    );
    if (planned) choice.value = planned.course_id;
    const first = courses.find((c) => c.id === choice.value);
    const start = input('course-start', { type: 'date', value: planned?.planned_start ?? first?.start_date ?? '', 'aria-label': t('console.plans.planned_start') });
    const end = input('course-end', { type: 'date', value: planned?.planned_end ?? first?.start_date ?? '', 'aria-label': t('console.plans.planned_end') });
    const errorSlot = (/** @type {string} */ name) => h('p', { class: 'field-error error', 'data-error-for': `courses[${index}].${name}`, hidden: true });
    const row = h(
      'tr',
      { 'data-planned': '' },
      h('td', null, choice, errorSlot('course_id')),
      h('td', null, start, dateInWords(start), errorSlot('planned_start')),
      h('td', null, end, dateInWords(end), errorSlot('planned_end')),
      h('td', null, h('button', { type: 'button', 'data-testid': 'plan-course-remove', onclick: () => row.remove() }, t('console.plans.remove_course'))),
    );
    rows.append(row);
  };
  for (const planned of plan?.courses ?? []) addRow(planned);
  const addCourse = h('button', { type: 'button', 'data-testid': 'plan-course-add', disabled: courses.length === 0, onclick: () => addRow(null) }, t('console.plans.add_course'));

  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'plan-save' }, plan ? t('console.save') : t('console.plans.create'));
  const form = apiForm(
    context,
    { class: 'form grid', novalidate: true, 'data-testid': 'plan-form' },
    async () => {
      const topical = ruleKind.value === 'sessions_on_topics';
      const body = {
        unit_id: unit.value,
        year: Number(year.value),
        title: title.value.trim(),
        target_positions: positions.filter((b) => b.checked).map((b) => b.value),
        elected_since: electedOnly.checked ? electedSince.value || '' : null,
        target_percent: Number(share.value),
        rule: topical
          ? { kind: ruleKind.value, min_sessions: Number(minSessions.value), topics: topics.value.split('\n').map((x) => x.trim()).filter(Boolean) }
          : { kind: ruleKind.value, min_rate: Number(minRate.value) },
        courses: [...rows.querySelectorAll('tr')].map((tr) => {
          const [choice, start, end] = /** @type {HTMLInputElement[]} */ ([...tr.querySelectorAll('select, input')]);
          return { course_id: choice.value, planned_start: start.value, planned_end: end.value };
        }),
      };
      /** @type {HTMLButtonElement} */ (submit).disabled = true;
      try {
        const saved = await saveRecord(context.api, PLANS, plan, body);
        context.go(`#/plans/${saved.id}`);
      } finally {
        /** @type {HTMLButtonElement} */ (submit).disabled = false;
      }
    },
    field(t('console.plans.unit_field'), unit, 'unit_id'),
    field(t('console.plans.year'), year, 'year'),
    field(t('console.plans.title_field'), title, 'title'),
    positionGroup,
    h('label', { class: 'check' }, electedOnly, ' ', t('console.plans.elected_only')),
    electedField,
    field(t('console.plans.share_field'), share, 'target_percent'),
    field(t('console.plans.rule'), ruleKind, 'rule.kind'),
    rateField,
    ...sessionFields,
    h(
      'fieldset',
      { class: 'field wide', 'data-field': 'courses' },
      h('legend', null, t('console.plans.courses')),
      h(
        'table',
        { class: 'planned' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('console.plans.course')), h('th', { scope: 'col' }, t('console.plans.planned_start')), h('th', { scope: 'col' }, t('console.plans.planned_end')), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, t('console.plans.remove_course'))))),
        rows,
      ),
      h('p', { class: 'field-error error', 'data-error-for': 'courses', hidden: true }),
      addCourse,
    ),
    formMessage(),
    h('div', { class: 'form-actions' }, submit),
  );
  return form;
}

/**
 * @param {Context} context
 * @param {string} id
 */
export function planScreen(context, id) {
  const el = h('div', null, loading());
  context.api.request('GET', `${REPORT}/${id}`).then(
    (/** @type {PlanReport} */ report) => {
      document.querySelector('[data-testid=screen-title]')?.replaceChildren(report.plan.title);
      const progress = report.progress;
      replace(
        el,
        h('p', null, h('a', { href: '#/plans' }, t('console.plans.back'))),
        report.unit.in_force ? null : h('p', { class: 'banner', 'data-testid': 'plan-ended' }, t('console.plans.ended', { unit: report.unit.merged_into_name ?? '' })),
        h(
          'div',
          { class: 'tiles' },
          tile(t('console.plans.trained'), percentText(progress.percent), countText(progress), 'plan-trained'),
          tile(t('console.plans.required'), String(progress.required), t('console.plans.required_note', { percent: report.plan.target_percent, met: metText(progress) }), 'plan-required'),
          tile(t('console.plans.courses_not_held'), String(report.courses_not_held), t('console.plans.courses_count', { count: report.courses.length }), 'plan-courses-not-held'),
        ),
        report.plan.elected_since
          ? h('p', { class: 'muted', 'data-testid': 'plan-elected-since' }, t('console.plans.elected_note', { date: formatDate(report.plan.elected_since) }))
          : null,
        h(
          'div',
          { class: 'actions' },
          planDownload(context, id, 'csv', t('console.download_csv')),
          planDownload(context, id, 'xlsx', t('console.download_xlsx')),
          h('a', { href: `#/plans/${id}/edit`, class: 'button', 'data-testid': 'plan-edit' }, t('console.plans.edit')),
          deleteButton(context, report.plan),
        ),
        tableSection({
          caption: t('console.plans.units', { unit: report.unit.name, year: report.plan.year }),
          testid: 'plan-units',
          rows: report.units,
          rowAttrs: (u) => ({ 'data-unit': u.unit_id }),
          columns: [
            { key: 'name', label: t('console.unit'), cell: (u) => `${'\u00a0\u00a0'.repeat(u.depth)}${u.name}` },
            { key: 'target', label: t('console.plans.target'), numeric: true, cell: (u) => h('span', { 'data-col': 'target' }, u.target) },
            { key: 'trained', label: t('console.plans.trained'), numeric: true, cell: (u) => h('span', { 'data-col': 'trained' }, u.trained) },
            { key: 'percent', label: t('console.coverage.percent'), numeric: true, cell: (u) => percentText(u.percent) },
          ],
        }),
        tableSection(
          {
            caption: t('console.plans.unit_plans'),
            testid: 'plan-unit-plans',
            rows: report.unit_plans,
            sortKey: 'unit',
            empty: t('console.plans.no_unit_plans'),
            rowAttrs: (p) => ({ 'data-plan': p.plan_id }),
            columns: [
              { key: 'unit', label: t('console.unit'), sort: (p) => p.unit_name, cell: (p) => p.unit_name },
              { key: 'title', label: t('console.plans.plan'), sort: (p) => p.title, cell: (p) => h('a', { href: `#/plans/${p.plan_id}` }, p.title) },
              { key: 'trained', label: t('console.plans.trained'), numeric: true, sort: (p) => p.progress.percent ?? -1, cell: (p) => h('span', { 'data-col': 'trained' }, countText(p.progress)) },
              { key: 'required', label: t('console.plans.required'), numeric: true, sort: (p) => p.progress.required, cell: (p) => String(p.progress.required) },
              { key: 'met', label: t('console.plans.met'), sort: (p) => Number(p.progress.met), cell: (p) => metText(p.progress) },
            ],
          },
          h('p', { class: 'muted', 'data-testid': 'plan-unit-plans-total' }, t('console.plans.unit_plans_total', { count: countText(report.unit_plans_total), required: report.unit_plans_total.required })),
        ),
        tableSection({
          caption: t('console.plans.not_trained', { count: report.not_trained.length }),
          testid: 'plan-not-trained',
          rows: report.not_trained,
          sortKey: 'unit',
          rowAttrs: (p) => ({ 'data-person': p.person_id }),
          columns: [
            { key: 'name', label: t('console.person.name'), sort: (p) => p.full_name, cell: (p) => p.full_name },
            { key: 'unit', label: t('console.unit'), sort: (p) => p.unit_name, cell: (p) => p.unit_name },
            { key: 'position', label: t('console.person.position'), sort: (p) => p.position, cell: (p) => t(`position.${p.position}`) },
            { key: 'phone', label: t('console.person.phone'), cell: (p) => p.phone ?? '' },
          ],
        }),
        tableSection({
          caption: t('console.plans.courses'),
          testid: 'plan-courses',
          rows: report.courses,
          rowAttrs: (c) => ({ 'data-course': c.course_id, 'data-held': String(c.held) }),
          columns: [
            { key: 'title', label: t('console.plans.course'), cell: (c) => h('a', { href: `#/courses/${c.course_id}` }, c.title) },
            { key: 'planned', label: t('console.plans.planned'), cell: (c) => `${formatDate(c.planned_start)} – ${formatDate(c.planned_end)}` },
            { key: 'held', label: t('console.plans.status'), cell: (c) => (c.held ? t('console.plans.held') : t('console.plans.not_held')) },
          ],
        }),
        section(
          t('console.plans.changes'),
          report.changes.length
            ? h('ul', { 'data-testid': 'plan-changes' }, report.changes.map((c) => h('li', null, changeText(c))))
            : h('p', { class: 'muted', 'data-testid': 'plan-changes' }, t('console.plans.no_changes')),
        ),
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.nav.plans'), el };
}
