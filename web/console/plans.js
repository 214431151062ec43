// Yearly training plans: the list of the plans the caller manages, and a plan's progress ("Kế
// hoạch và kết quả bồi dưỡng") as the report gives it: trained against the share to train, per
// unit, the plans of the units below with their sum, who is not trained yet, the planned courses
// and the year's merges and renames; the report's files. Read only: plans are written through
// the API.

import { h, replace } from '/shared/dom.js';
import { formatDate, t } from '/shared/i18n.js';
import { download, errorBox, loading, section, table } from './ui.js';
import { percentText, tile } from './dashboard.js';

/** @typedef {import('./main.js').Context} Context */

/**
 * @typedef {{target: number, required: number, trained: number, not_trained: number,
 *   percent: number|null, met: boolean}} PlanProgress
 * @typedef {{person_id: string, full_name: string, position: string, phone: string|null,
 *   unit_id: string, unit_name: string}} TargetPerson
 * @typedef {{plan: {id: string, title: string, year: number, target_percent: number},
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
function downloadButton(context, id, format, label) {
  const button = h('button', {
    type: 'button',
    'data-testid': `plan-${format}`,
    onclick: async () => {
      button.setAttribute('aria-busy', 'true');
      try {
        await download(context.api, `${REPORT}/${id}`, { format }, `ke-hoach.${format}`);
      } catch (error) {
        button.after(errorBox(error));
      }
      button.removeAttribute('aria-busy');
    },
  }, label);
  return button;
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
        h('div', { class: 'actions' }, downloadButton(context, id, 'csv', t('console.download_csv')), downloadButton(context, id, 'xlsx', t('console.download_xlsx'))),
        section(
          t('console.plans.units', { unit: report.unit.name, year: report.plan.year }),
          table({
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
        ),
        section(
          t('console.plans.unit_plans'),
          h('p', { class: 'muted', 'data-testid': 'plan-unit-plans-total' }, t('console.plans.unit_plans_total', { count: countText(report.unit_plans_total), required: report.unit_plans_total.required })),
          table({
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
          }),
        ),
        section(
          t('console.plans.not_trained', { count: report.not_trained.length }),
          table({
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
        ),
        section(
          t('console.plans.courses'),
          table({
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
        ),
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
