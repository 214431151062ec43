// The console's building blocks: labelled fields whose errors come from the API's answer, sortable
// paged tables, downloads that carry the token, and paging through list endpoints. Everything
// goes on the page as text (dom.js h()), never as markup.

import { ApiError, OfflineError } from '/shared/api.js';
import { h, replace } from '/shared/dom.js';
import { codeText, formatDateInWords, t } from '/shared/i18n.js';

/** @typedef {import('/shared/api.js').Api} Api */

let fieldIds = 0;

/**
 * Whether the account plans training: an admin (everything) or an organiser (their unit and the
 * units below it). The server decides what each may touch; the console only shows the screens.
 * @param {import('/shared/api.js').User} user
 */
export function plansTraining(user) {
  return user.role === 'admin' || user.role === 'organiser';
}

/**
 * A labelled control with a place for the API's message about it (`data-field` names the
 * request field, as in a 422's `details[].field`).
 * @param {string} label
 * @param {HTMLElement} control an input, select or textarea
 * @param {string} name the request field
 */
export function field(label, control, name) {
  fieldIds += 1;
  const id = control.id || `f-${name}-${fieldIds}`;
  control.id = id;
  control.setAttribute('name', name);
  const message = h('p', { class: 'field-error error', id: `${id}-error`, 'data-error-for': name, hidden: true });
  control.setAttribute('aria-describedby', message.id);
  const words = control instanceof HTMLInputElement && control.type === 'date' ? dateInWords(control) : null;
  return h('div', { class: 'field', 'data-field': name }, h('label', { for: id }, label), control, words, message);
}

/**
 * The day a date input holds, spelled out and kept up to date, to stand beside it. A browser
 * shows a date input in its own language's order (an English one as mm/dd/yyyy), so "08/12"
 * typed for the 8th of December would otherwise be saved, unnoticed, as the 12th of August.
 * @param {HTMLInputElement} control
 */
export function dateInWords(control) {
  const words = h('span', { class: 'date-words muted small', 'data-date-words': '', 'aria-live': 'polite' });
  const show = () => {
    words.textContent = /^\d{4}-\d{2}-\d{2}$/.test(control.value) ? formatDateInWords(control.value) : '';
  };
  control.addEventListener('input', show);
  control.addEventListener('change', show);
  show();
  return words;
}

/**
 * Shows an API error on a form: each field's problem next to the field it names, the rest (and a
 * 412's offer to reload) in the form's message area.
 * @param {HTMLElement} form
 * @param {unknown} error
 * @param {() => void} [reload] called by the "reload" button offered when the record changed
 */
function showFormError(form, error, reload) {
  clearFormErrors(form);
  const area = /** @type {HTMLElement|null} */ (form.querySelector('.form-message'));
  const unplaced = [];
  if (error instanceof ApiError && Array.isArray(error.details)) {
    for (const problem of error.details) {
      const slot = /** @type {HTMLElement|null} */ (form.querySelector(`[data-error-for="${problem.field}"]`));
      if (slot) {
        replace(slot, ...codeWithDetail(problem.code, problem.message));
        slot.hidden = false;
        controlBefore(slot)?.setAttribute('aria-invalid', 'true');
      } else {
        unplaced.push(`${problem.field}: ${codeText(problem.code, problem.message)}`);
      }
    }
  }
  if (!area) return;
  if (error instanceof ApiError && error.status === 412) {
    replace(
      area,
      h('span', null, t('console.stale')),
      ' ',
      reload ? h('button', { type: 'button', onclick: reload, 'data-testid': 'reload' }, t('console.reload')) : null,
    );
  } else {
    replace(area, errorText(error), unplaced.length ? ` (${unplaced.join('; ')})` : '');
  }
  area.hidden = false;
}

/**
 * The control an error slot stands after: a date's spelled-out day stands between them.
 * @param {Element} slot
 */
function controlBefore(slot) {
  let control = slot.previousElementSibling;
  while (control?.hasAttribute('data-date-words')) control = control.previousElementSibling;
  return control;
}

/** @param {HTMLElement} form */
function clearFormErrors(form) {
  for (const slot of form.querySelectorAll('[data-error-for]')) {
    /** @type {HTMLElement} */ (slot).hidden = true;
    controlBefore(slot)?.removeAttribute('aria-invalid');
  }
  const area = /** @type {HTMLElement|null} */ (form.querySelector('.form-message'));
  if (area) area.hidden = true;
}

/**
 * A form that sends itself to the API: on submit its earlier errors are cleared and `send` runs;
 * an error it throws shows on the form ([showFormError], with the offer to redraw on a 412).
 * @param {{rerender: () => void}} context
 * @param {import('/shared/dom.js').Attrs} attrs the form's attributes (not `onsubmit`)
 * @param {() => Promise<void>} send the request, and what follows its success
 * @param {...import('/shared/dom.js').Child} children
 */
export function apiForm(context, attrs, send, ...children) {
  const form = h(
    'form',
    {
      ...attrs,
      onsubmit: async (/** @type {Event} */ event) => {
        event.preventDefault();
        clearFormErrors(form);
        try {
          await send();
        } catch (error) {
          showFormError(form, error, context.rerender);
        }
      },
    },
    ...children,
  );
  return form;
}

/**
 * The `If-Match` header of a record's revision, so that a record changed meanwhile is not
 * replaced or deleted blindly.
 * @param {number} rev
 */
export function ifMatch(rev) {
  return { 'If-Match': `"${rev}"` };
}

/**
 * Saves a form's record: a new one (`record` none) with POST to its collection, an existing one
 * with PUT on its path and its revision. The saved record.
 * @param {Api} api
 * @param {string} collection the collection's path
 * @param {{id: string, rev: number} | null | undefined} record
 * @param {any} body
 * @returns {Promise<any>}
 */
export function saveRecord(api, collection, record, body) {
  return record
    ? api.request('PUT', `${collection}/${record.id}`, { body, headers: ifMatch(record.rev) })
    : api.request('POST', collection, { body });
}

/** The message area of a form (role=alert so that a screen reader hears it). */
export function formMessage() {
  return h('p', { class: 'form-message error', role: 'alert', hidden: true });
}

/**
 * The code's words, then the server's own message as a secondary detail when it says more.
 * @param {string|undefined} code
 * @param {string} message
 * @returns {import('/shared/dom.js').Child[]}
 */
export function codeWithDetail(code, message) {
  const text = codeText(code, message);
  if (text === message || !message) return [text];
  return [text, ' ', h('span', { class: 'detail' }, `(${message})`)];
}

/** @param {unknown} error */
export function errorText(error) {
  if (error instanceof OfflineError) return t('console.offline');
  if (error instanceof ApiError) return t('error.generic', { message: codeText(error.code, error.message) });
  return t('error.generic', { message: String(error) });
}

/** @param {unknown} error */
export function errorBox(error) {
  return h('p', { class: 'banner danger', role: 'alert' }, errorText(error));
}

/**
 * Every item of a list endpoint, page by page.
 * @param {Api} api
 * @param {string} path
 * @param {Record<string, any>} [query]
 * @returns {Promise<any[]>}
 */
export async function all(api, path, query = {}) {
  const items = [];
  for (let offset = 0; ; offset += 500) {
    const page = await api.request('GET', path, { query: { ...query, limit: 500, offset } });
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

/**
 * Downloads what a GET answers (a report) as a file, with the token the link could not carry.
 * @param {Api} api
 * @param {string} path
 * @param {Record<string, any>} query
 * @param {string} filename
 */
export async function download(api, path, query, filename) {
  const response = /** @type {Response} */ (await api.request('GET', path, { query, response: true }));
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * A button that downloads a report as a file (see download()): busy meanwhile, an error after it
 * when the download fails.
 * @param {Api} api
 * @param {{testid: string, path: string, query: Record<string, any>, filename: string, label: string}} spec
 */
export function downloadButton(api, { testid, path, query, filename, label }) {
  const button = h('button', {
    type: 'button',
    'data-testid': testid,
    onclick: async () => {
      button.setAttribute('aria-busy', 'true');
      try {
        await download(api, path, query, filename);
      } catch (error) {
        button.after(errorBox(error));
      }
      button.removeAttribute('aria-busy');
    },
  }, label);
  return button;
}

/**
 * @typedef {{key: string, label: string, sort?: (row: any) => string|number, cell: (row: any) => any,
 *   numeric?: boolean}} Column
 */

const PAGE_SIZE = 25;

/**
 * A table of rows, sortable by any column with a `sort` and paged, redrawn in place.
 * @param {{columns: Column[], rows: any[], caption: string, sortKey?: string, descending?: boolean,
 *   empty?: string, testid?: string, rowAttrs?: (row: any) => Record<string, string>}} spec
 */
export function table(spec) {
  let sortKey = spec.sortKey ?? null;
  let descending = spec.descending ?? false;
  let page = 0;
  // Focusable so that a keyboard can scroll a wide table sideways.
  const wrap = h('div', { class: 'table-wrap', 'data-testid': spec.testid, tabindex: '0', role: 'region', 'aria-label': spec.caption });
  const draw = () => {
    const column = spec.columns.find((c) => c.key === sortKey);
    const rows = [...spec.rows];
    if (column?.sort) {
      const by = column.sort;
      rows.sort((a, b) => {
        const x = by(a);
        const y = by(b);
        const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), 'vi');
        return descending ? -order : order;
      });
    }
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const shown = rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    const head = spec.columns.map((c) => {
      const sorted = c.key === sortKey;
      const label = c.sort
        ? h(
            'button',
            {
              type: 'button',
              class: 'sort',
              onclick: () => {
                descending = sorted ? !descending : false;
                sortKey = c.key;
                draw();
              },
            },
            c.label,
            sorted ? (descending ? ' ▼' : ' ▲') : '',
          )
        : c.label;
      return h(
        'th',
        { scope: 'col', class: c.numeric ? 'num' : null, 'aria-sort': sorted ? (descending ? 'descending' : 'ascending') : null },
        label,
      );
    });
    const body = shown.length
      ? shown.map((row) =>
          h(
            'tr',
            spec.rowAttrs ? spec.rowAttrs(row) : null,
            spec.columns.map((c) => h('td', { class: c.numeric ? 'num' : null }, c.cell(row))),
          ),
        )
      : [h('tr', null, h('td', { colspan: String(spec.columns.length), class: 'muted' }, spec.empty ?? t('console.empty')))];
    replace(
      wrap,
      h('table', { class: 'data' }, h('caption', { class: 'visually-hidden' }, spec.caption), h('thead', null, h('tr', null, head)), h('tbody', null, body)),
      pages > 1
        ? h(
            'div',
            { class: 'pager' },
            h('button', { type: 'button', disabled: page === 0, onclick: () => { page -= 1; draw(); } }, t('console.prev')),
            h('span', null, t('console.page', { page: page + 1, pages, total: rows.length })),
            h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page += 1; draw(); } }, t('console.next')),
          )
        : h('p', { class: 'muted small' }, t('console.rows', { total: rows.length })),
    );
  };
  draw();
  return wrap;
}

/**
 * A section of a screen with its heading.
 * @param {string} title
 * @param {...import('/shared/dom.js').Child} children
 */
export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', null, title), ...children);
}

/**
 * A section that shows one table, headed by the table's caption (and what stands between the
 * heading and the table).
 * @param {Parameters<typeof table>[0]} spec
 * @param {...import('/shared/dom.js').Child} before
 */
export function tableSection(spec, ...before) {
  return section(spec.caption, ...before, table(spec));
}

/** A placeholder while a screen loads. */
export function loading() {
  return h('p', { class: 'muted', 'aria-busy': 'true' }, t('console.loading'));
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An SVG element with attributes and children (text as text nodes).
 * @param {string} tag
 * @param {Record<string, string|number|null|undefined>} [attrs]
 * @param {...(Node|string|number|null|undefined|false)} children
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * Sends a file as the raw request body with upload progress (fetch reports none), with the
 * access token refreshed first when it is about to expire and once more when the server says it
 * has.
 * @param {Api} api
 * @param {string} method
 * @param {string} path
 * @param {Record<string, any>} query
 * @param {Blob} file
 * @param {(sent: number, total: number) => void} progress
 * @param {string} [contentType] the file's media type; by default the server recognises the file
 *   from its bytes (a roster spreadsheet is a zip archive)
 * @param {Record<string, string>} [headers] more request headers (`If-Match` for a new version)
 * @returns {Promise<any>}
 */
export async function upload(api, method, path, query, file, progress, contentType = 'application/octet-stream', headers = {}) {
  if (api.session && api.session.expires_at - Date.now() < 30_000) await api.refresh();
  try {
    return await sendFile(api, method, path, query, file, progress, contentType, headers);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401 && error.code === 'token_expired')) throw error;
    await api.refresh();
    return sendFile(api, method, path, query, file, progress, contentType, headers);
  }
}

/**
 * @param {Api} api
 * @param {string} method
 * @param {string} path
 * @param {Record<string, any>} query
 * @param {Blob} file
 * @param {(sent: number, total: number) => void} progress
 * @param {string} contentType
 * @param {Record<string, string>} headers
 * @returns {Promise<any>}
 */
function sendFile(api, method, path, query, file, progress, contentType, headers) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
  }
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, url);
    request.setRequestHeader('Accept', 'application/json');
    request.setRequestHeader('Content-Type', contentType);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    if (api.session) request.setRequestHeader('Authorization', `Bearer ${api.session.access_token}`);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) progress(event.loaded, event.total);
    });
    request.addEventListener('load', () => {
      let body = null;
      try {
        body = request.responseText ? JSON.parse(request.responseText) : null;
      } catch {
        // Not JSON (a proxy's page): the status says enough.
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new ApiError(request.status, body?.code ?? `http_${request.status}`, body?.message ?? request.statusText, body?.details));
    });
    request.addEventListener('error', () => reject(new OfflineError()));
    request.send(file);
  });
}
