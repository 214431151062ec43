// The dashboard: the year's coverage of grassroots cadres (the coverage report's own numbers) for
// the province and each commune/ward, drawn as an SVG bar chart, worst first; a unit's page with
// the names not yet trained; the report as CSV or XLSX; what waits in the sync review.

import { h, replace } from '/shared/dom.js';
import { formatDate, t } from '/shared/i18n.js';
import { downloadButton, errorBox, loading, section, svg, table, tableSection } from './ui.js';

/** @typedef {import('./main.js').Context} Context */

const COVERAGE = '/api/v1/reports/coverage';

/**
 * @typedef {{unit_id: string, code: string, name: string, kind: string, parent_id: string|null,
 *   depth: number, cadres: number, trained: number, percent: number|null,
 *   missing: {person_id: string, full_name: string, position: string, phone: string|null}[]}} CoverageUnit
 * @typedef {{from: string, to: string, unit_id: string|null,
 *   total: {cadres: number, trained: number, percent: number|null, courses: number},
 *   units: CoverageUnit[]}} Coverage
 */

/** @param {number|null} percent null when there is no one to count */
export function percentText(percent) {
  if (percent === null) return '–';
  return `${percent.toLocaleString(document.documentElement.lang === 'en' ? 'en-GB' : 'vi-VN', { maximumFractionDigits: 1 })} %`;
}

/** @param {CoverageUnit|{cadres: number, trained: number, percent: number|null}} row */
function countText(row) {
  return t('console.coverage.count', { trained: row.trained, cadres: row.cadres, percent: percentText(row.percent) });
}

/** @param {Context} context */
export function dashboardScreen(context) {
  const el = h('div', { class: 'dashboard' }, loading());
  const year = new Date().getFullYear();
  Promise.all([
    context.api.request('GET', COVERAGE),
    context.api.request('GET', '/api/v1/sync/conflicts', { query: { status: 'open', limit: 1 } }),
    context.api.request('GET', '/api/v1/sync/quarantine', { query: { status: 'open', limit: 1 } }),
  ]).then(
    ([coverage, conflicts, quarantine]) => {
      /** @type {Coverage} */
      const report = coverage;
      const province = report.units.find((u) => u.depth === 0);
      const grassroots = report.units
        .filter((u) => u.depth === 1)
        .sort((a, b) => (a.percent ?? -1) - (b.percent ?? -1) || a.name.localeCompare(b.name, 'vi'));
      // An organiser's report starts at their unit (`unit_id`): the total is that unit's, and a
      // unit with none below it is its own row.
      const scope = report.unit_id && province ? province.name : t('console.coverage.province');
      const rows = grassroots.length || !province ? grassroots : [province];
      replace(
        el,
        h(
          'div',
          { class: 'tiles' },
          tile(scope, percentText(report.total.percent), countText(report.total), 'coverage-total'),
          tile(t('console.coverage.courses'), String(report.total.courses), t('console.coverage.period', { from: formatDate(report.from), to: formatDate(report.to) }), 'coverage-courses'),
          tile(t('console.review.conflicts'), String(conflicts.total), h('a', { href: '#/review' }, t('console.review.open')), 'open-conflicts'),
          tile(t('console.review.quarantine'), String(quarantine.total), h('a', { href: '#/review' }, t('console.review.open')), 'open-quarantine'),
        ),
        section(
          t('console.coverage.title', { year }),
          h('p', { class: 'muted' }, t('console.coverage.explain')),
          h(
            'div',
            { class: 'actions' },
            coverageDownload(context, 'csv', t('console.download_csv')),
            coverageDownload(context, 'xlsx', t('console.download_xlsx')),
          ),
          chart(province ? [province, ...grassroots] : grassroots),
        ),
        section(
          t('console.coverage.table'),
          coverageTable(rows),
        ),
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.nav.dashboard'), el };
}

/**
 * @param {string} label
 * @param {string} value
 * @param {string|HTMLElement} note
 * @param {string} testid
 */
export function tile(label, value, note, testid) {
  return h(
    'div',
    { class: 'tile', 'data-testid': testid },
    h('p', { class: 'tile-label' }, label),
    h('p', { class: 'tile-value', 'data-testid': `${testid}-value` }, value),
    h('p', { class: 'muted small' }, note),
  );
}

/**
 * @param {Context} context
 * @param {'csv'|'xlsx'} format
 * @param {string} label
 * @param {string} [unitId]
 */
function coverageDownload(context, format, label, unitId) {
  return downloadButton(context.api, {
    testid: `coverage-${format}`,
    path: COVERAGE,
    query: { format, unit_id: unitId },
    filename: `coverage.${format}`,
    label,
  });
}

const BAR_HEIGHT = 26;
const LABEL_WIDTH = 210;
const BAR_WIDTH = 480;
const VALUE_WIDTH = 150;

/**
 * Horizontal bars, one per unit, each a link to the unit's page; the numbers are written beside
 * each bar, so the colours carry nothing the text does not say.
 * @param {CoverageUnit[]} units
 */
function chart(units) {
  const width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
  const height = units.length * BAR_HEIGHT + 24;
  const rows = units.map((unit, index) => {
    const y = index * BAR_HEIGHT;
    const percent = unit.percent ?? 0;
    const filled = Math.max(0, Math.min(100, percent)) * (BAR_WIDTH / 100);
    const band = percent >= 80 ? 'good' : percent >= 50 ? 'fair' : 'poor';
    return svg(
      'a',
      { href: `#/units/${unit.unit_id}`, class: `bar ${band}`, 'data-unit': unit.unit_id },
      svg('text', { x: LABEL_WIDTH - 8, y: y + BAR_HEIGHT / 2 + 5, 'text-anchor': 'end', class: unit.depth === 0 ? 'label strong' : 'label' }, unit.name),
      svg('rect', { x: LABEL_WIDTH, y: y + 4, width: BAR_WIDTH, height: BAR_HEIGHT - 8, class: 'track' }),
      svg('rect', { x: LABEL_WIDTH, y: y + 4, width: filled.toFixed(1), height: BAR_HEIGHT - 8, class: 'fill' }),
      svg('text', { x: LABEL_WIDTH + BAR_WIDTH + 8, y: y + BAR_HEIGHT / 2 + 5, class: 'value' }, `${unit.trained}/${unit.cadres} · ${percentText(unit.percent)}`),
    );
  });
  const axis = [0, 25, 50, 75, 100].map((tick) => {
    const x = LABEL_WIDTH + tick * (BAR_WIDTH / 100);
    return [
      svg('line', { x1: x, x2: x, y1: 0, y2: units.length * BAR_HEIGHT, class: 'grid' }),
      svg('text', { x, y: units.length * BAR_HEIGHT + 16, 'text-anchor': 'middle', class: 'tick' }, `${tick} %`),
    ];
  });
  return h(
    'figure',
    { class: 'chart' },
    svg(
      'svg',
      { viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-labelledby': 'chart-caption', 'data-testid': 'coverage-chart', preserveAspectRatio: 'xMinYMin meet' },
      ...axis.flat(),
      ...rows,
    ),
    h('figcaption', { id: 'chart-caption', class: 'muted small' }, t('console.coverage.chart_caption')),
  );
}

/** @param {CoverageUnit[]} units */
function coverageTable(units) {
  return table({
    caption: t('console.coverage.table'),
    testid: 'coverage-table',
    rows: units,
    sortKey: 'percent',
    rowAttrs: (u) => ({ 'data-unit': u.unit_id }),
    columns: [
      { key: 'name', label: t('console.unit'), sort: (u) => u.name, cell: (u) => h('a', { href: `#/units/${u.unit_id}` }, u.name) },
      { key: 'trained', label: t('console.coverage.trained'), numeric: true, sort: (u) => u.trained, cell: (u) => h('span', { 'data-col': 'trained' }, u.trained) },
      { key: 'cadres', label: t('console.coverage.cadres'), numeric: true, sort: (u) => u.cadres, cell: (u) => h('span', { 'data-col': 'cadres' }, u.cadres) },
      { key: 'percent', label: t('console.coverage.percent'), numeric: true, sort: (u) => u.percent ?? -1, cell: (u) => h('span', { 'data-col': 'percent', 'data-value': u.percent ?? '' }, percentText(u.percent)) },
    ],
  });
}

/**
 * A unit's coverage and the names of its cadres not yet trained (its own and its sub-units').
 * @param {Context} context
 * @param {string} unitId
 */
export function unitCoverageScreen(context, unitId) {
  const el = h('div', null, loading());
  const screen = { title: t('console.coverage.unit'), el };
  context.api.request('GET', COVERAGE, { query: { unit_id: unitId } }).then(
    (/** @type {Coverage} */ report) => {
      const unit = report.units[0];
      const title = unit ? unit.name : t('console.coverage.unit');
      document.querySelector('[data-testid=screen-title]')?.replaceChildren(title);
      const missing = report.units.flatMap((u) => u.missing.map((m) => ({ ...m, unit_name: u.name })));
      replace(
        el,
        h('p', null, h('a', { href: '#/' }, t('console.back_dashboard'))),
        h(
          'div',
          { class: 'tiles' },
          tile(t('console.coverage.unit_share'), percentText(report.total.percent), countText(report.total), 'unit-total'),
        ),
        h('div', { class: 'actions' }, coverageDownload(context, 'csv', t('console.download_csv'), unitId), coverageDownload(context, 'xlsx', t('console.download_xlsx'), unitId)),
        tableSection({
          caption: t('console.coverage.missing', { count: missing.length }),
          testid: 'missing-table',
          rows: missing,
          sortKey: 'name',
          rowAttrs: (m) => ({ 'data-person': m.person_id }),
          columns: [
            { key: 'name', label: t('console.person.name'), sort: (m) => m.full_name, cell: (m) => m.full_name },
            { key: 'position', label: t('console.person.position'), sort: (m) => m.position, cell: (m) => t(`position.${m.position}`) },
            { key: 'unit', label: t('console.unit'), sort: (m) => m.unit_name, cell: (m) => m.unit_name },
            { key: 'phone', label: t('console.person.phone'), cell: (m) => m.phone ?? '' },
          ],
        }),
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return screen;
}
