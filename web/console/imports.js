// Roster import: pick a CSV or XLSX file, see the server's dry run row by row (new, updated,
// unchanged, possible duplicates, errors with their row and field), then apply it; the upload's
// progress is shown for large files. The server reads and judges the file; the page only shows
// its report.

import { h, replace } from '/shared/dom.js';
import { codeText, t } from '/shared/i18n.js';
import { all, codeWithDetail, errorBox, field, section, table, tableSection, upload } from './ui.js';

/** @typedef {import('./main.js').Context} Context */
/**
 * @typedef {{row: number, field: string, code: string, message: string}} Problem
 * @typedef {{row: number, action: string, full_name: string, person_id: string|null,
 *   changes: string[], enroll: boolean}} ReportRow
 * @typedef {{dry_run: boolean, format: string, header_row: number, summary: Record<string, number>,
 *   problems: Problem[], rows: ReportRow[]}} ImportReport
 */

const IMPORT = '/api/v1/imports/people';
const SUMMARY = ['rows', 'created', 'updated', 'unchanged', 'possible_duplicates', 'duplicate_rows', 'errors', 'enrolled'];
const ACTIONS = ['create', 'update', 'unchanged', 'possible_duplicate', 'duplicate_row', 'error'];

/** @param {Context} context */
export function importScreen(context) {
  const file = /** @type {HTMLInputElement} */ (h('input', { type: 'file', accept: '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'data-testid': 'import-file' }));
  const course = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'import-course' }, h('option', { value: '' }, t('console.import.no_course'))));
  all(context.api, '/api/v1/courses').then(
    (courses) => course.append(...courses.map((c) => h('option', { value: c.id }, c.code ? `${c.code} – ${c.title}` : c.title))),
    () => {},
  );
  const progress = /** @type {HTMLProgressElement} */ (h('progress', { max: 100, value: 0, 'aria-label': t('console.import.progress'), hidden: true, 'data-testid': 'import-progress' }));
  const status = h('p', { role: 'status', class: 'muted', 'data-testid': 'import-status' });
  const result = h('div', { 'data-testid': 'import-result' });
  const check = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary', 'data-testid': 'import-check' }, t('console.import.check')));
  const apply = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', 'data-testid': 'import-apply', disabled: true }, t('console.import.apply')));

  /** @param {boolean} dryRun */
  const send = async (dryRun) => {
    const chosen = file.files?.[0];
    if (!chosen) {
      replace(status, h('span', { class: 'error' }, t('console.import.pick')));
      return;
    }
    check.disabled = true;
    apply.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    replace(status, t('console.import.sending', { name: chosen.name }));
    try {
      const report = await upload(context.api, 'POST', IMPORT, { dry_run: String(dryRun), course_id: course.value || undefined }, chosen, (sent, total) => {
        progress.value = Math.round((sent / total) * 100);
        if (sent >= total) replace(status, t('console.import.reading'));
      });
      // Done: the bar goes (its value stays at 100 for whoever reads it).
      progress.value = 100;
      progress.hidden = true;
      replace(status, dryRun ? t('console.import.checked', { name: chosen.name }) : t('console.import.applied', { name: chosen.name }));
      replace(result, reportView(report));
      apply.disabled = !dryRun || report.summary.errors > 0;
    } catch (error) {
      progress.hidden = true;
      replace(status, '');
      replace(result, errorBox(error), problemsOf(error));
    }
    check.disabled = false;
  };
  check.addEventListener('click', () => send(true));
  apply.addEventListener('click', () => send(false));
  file.addEventListener('change', () => {
    apply.disabled = true;
    replace(result);
    replace(status);
  });

  const el = h(
    'div',
    null,
    section(
      t('console.import.file'),
      h('p', { class: 'muted' }, t('console.import.explain')),
      h('div', { class: 'form grid' }, field(t('console.import.file_label'), file, 'file'), field(t('console.import.course'), course, 'course_id')),
      h('div', { class: 'form-actions' }, check, apply, progress),
      status,
    ),
    result,
  );
  return { title: t('console.nav.import'), el };
}

/**
 * A refused apply (422) lists each row's problems in `details` (`rows[<row>].<field>`).
 * @param {unknown} error
 */
function problemsOf(error) {
  const details = /** @type {any} */ (error)?.details;
  if (!Array.isArray(details) || details.length === 0) return null;
  return section(
    t('console.import.problems', { count: details.length }),
    h('ul', { 'data-testid': 'import-refused' }, details.map((d) => h('li', null, `${d.field}: ${codeText(d.code, d.message)}`))),
  );
}

const COLUMNS = ['stt', 'full_name', 'birth_date', 'gender', 'position', 'unit', 'phone'];

/** A problem's field as the file's column is called. @param {string} name */
function columnName(name) {
  return COLUMNS.includes(name) ? t(`console.import.column.${name}`) : name;
}

/** @param {ImportReport} report */
function reportView(report) {
  const problems = new Map();
  for (const p of report.problems) {
    const list = problems.get(p.row) ?? [];
    list.push(p);
    problems.set(p.row, list);
  }
  const filter = /** @type {HTMLSelectElement} */ (
    h('select', { 'data-testid': 'import-filter' }, h('option', { value: '' }, t('console.import.all_rows')), ACTIONS.map((a) => h('option', { value: a }, t(`console.import.action.${a}`))))
  );
  const rows = h('div');
  const draw = () => {
    const shown = report.rows.filter((r) => !filter.value || r.action === filter.value);
    replace(
      rows,
      table({
        caption: t('console.import.rows'),
        testid: 'import-rows',
        rows: shown,
        sortKey: 'row',
        rowAttrs: (r) => ({ 'data-row': String(r.row), 'data-action': r.action }),
        columns: [
          { key: 'row', label: t('console.import.row'), numeric: true, sort: (r) => r.row, cell: (r) => r.row },
          { key: 'name', label: t('console.person.name'), sort: (r) => r.full_name, cell: (r) => r.full_name },
          { key: 'action', label: t('console.import.result'), sort: (r) => r.action, cell: (r) => h('span', { class: `action action-${r.action}` }, t(`console.import.action.${r.action}`)) },
          {
            key: 'detail',
            label: t('console.import.detail'),
            cell: (r) => [
              r.changes.length ? h('span', null, t('console.import.changes', { fields: r.changes.join(', ') })) : null,
              r.enroll ? h('span', { class: 'muted' }, ` ${t('console.import.enrolls')}`) : null,
              (problems.get(r.row) ?? []).map((/** @type {Problem} */ p) => h('span', { class: 'problem block', 'data-field': p.field }, `${columnName(p.field)}: `, ...codeWithDetail(p.code, p.message))),
            ],
          },
        ],
      }),
    );
  };
  filter.addEventListener('change', draw);
  draw();
  return h(
    'div',
    null,
    h(
      'div',
      { class: 'tiles', 'data-testid': 'import-summary' },
      SUMMARY.map((key) =>
        h(
          'div',
          { class: `tile${key === 'errors' && report.summary.errors > 0 ? ' tile-danger' : ''}`, 'data-summary': key },
          h('p', { class: 'tile-label' }, t(`console.import.summary.${key}`)),
          h('p', { class: 'tile-value' }, report.summary[key]),
        ),
      ),
    ),
    report.problems.length
      ? tableSection({
          caption: t('console.import.problems', { count: report.problems.length }),
          testid: 'import-problems',
          rows: report.problems,
          sortKey: 'row',
          rowAttrs: (p) => ({ 'data-row': String(p.row), 'data-field': p.field, 'data-code': p.code }),
          columns: [
            { key: 'row', label: t('console.import.row'), numeric: true, sort: (p) => p.row, cell: (p) => p.row },
            { key: 'field', label: t('console.import.field'), sort: (p) => p.field, cell: (p) => columnName(p.field) },
            { key: 'message', label: t('console.import.message'), cell: (p) => codeWithDetail(p.code, p.message) },
          ],
        })
      : null,
    section(t('console.import.rows'), h('div', { class: 'actions' }, h('div', { class: 'field inline' }, h('label', { for: 'import-filter' }, t('console.import.show')), Object.assign(filter, { id: 'import-filter' }))), rows),
  );
}
