// Print sheets drawn by the page (the browser prints them, or saves them as PDF): the class
// sign-in sheet of a session (every enrolled trainee with a box to sign) and a certificate of
// completion for each completer of the course report.

import { h } from '/shared/dom.js';
import { formatDate, formatSpan, t } from '/shared/i18n.js';

/**
 * @typedef {{id: string, topic: string, starts_at: string, ends_at: string, place: string|null}} SheetSession
 * @typedef {{id: string, name: string, position: string, unit: string}} SheetTrainee
 */

/**
 * @param {{title: string, code: string|null, place: string|null}} course
 * @param {SheetSession} session
 * @param {SheetTrainee[]} trainees in roster order
 */
export function signInSheet(course, session, trainees) {
  return h(
    'article',
    { class: 'print-sheet signin-sheet', 'data-testid': 'signin-sheet', 'data-session': session.id },
    h('h2', null, t('console.sheets.signin_title')),
    h('p', { class: 'sheet-course' }, course.title),
    h(
      'p',
      null,
      t('console.sheets.session_line', {
        topic: session.topic,
        when: formatSpan(session.starts_at, session.ends_at),
        place: session.place ?? course.place ?? '',
      }),
    ),
    h(
      'table',
      { class: 'sheet-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, t('console.sheets.number')),
          h('th', { scope: 'col' }, t('console.person.name')),
          h('th', { scope: 'col' }, t('console.person.position')),
          h('th', { scope: 'col' }, t('console.unit')),
          h('th', { scope: 'col', class: 'sign' }, t('console.sheets.signature')),
        ),
      ),
      h(
        'tbody',
        null,
        trainees.map((p, i) => h('tr', { 'data-person': p.id }, h('td', null, i + 1), h('td', null, p.name), h('td', null, p.position), h('td', null, p.unit), h('td', { class: 'sign' }))),
      ),
    ),
    h('p', { class: 'sheet-total' }, t('console.sheets.total', { count: trainees.length })),
  );
}

/**
 * One certificate a page for each completer.
 * @param {{title: string, start_date: string, end_date: string, place: string|null}} course
 * @param {{person_id: string, full_name: string, unit_name: string|null}[]} completers
 */
export function certificates(course, completers) {
  return h(
    'div',
    { 'data-testid': 'certificates' },
    completers.map((p) =>
      h(
        'article',
        { class: 'print-sheet certificate', 'data-person': p.person_id },
        h('p', { class: 'cert-heading' }, t('console.sheets.cert_heading')),
        h('h2', null, t('console.sheets.cert_title')),
        h('p', null, t('console.sheets.cert_to')),
        h('p', { class: 'cert-name' }, p.full_name),
        p.unit_name ? h('p', null, p.unit_name) : null,
        h('p', null, t('console.sheets.cert_completed')),
        h('p', { class: 'cert-course' }, course.title),
        h('p', null, t('courses.dates', { start: formatDate(course.start_date), end: formatDate(course.end_date) }), course.place ? ` · ${course.place}` : ''),
      ),
    ),
  );
}
