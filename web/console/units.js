// Units: the tree of units in force with each unit's history (renames, merges) and the units that
// ended; rename and merge with a preview (who moves, from which day) before anything is written.

import { h, replace } from '/shared/dom.js';
import { formatDate, t } from '/shared/i18n.js';
import { all, apiForm, errorBox, field, formMessage, loading, section } from './ui.js';

/** @typedef {import('./main.js').Context} Context */
/**
 * @typedef {{id: string, code: string, name: string, kind: string, parent_id: string|null,
 *   valid_from: string|null, valid_to: string|null, merged_into_id: string|null, rev: number}} Unit
 */

/** Today in the browser's calendar, `YYYY-MM-DD`. */
function today() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
}

/** @param {Context} context */
export function unitsScreen(context) {
  const el = h('div', null, loading());
  all(context.api, '/api/v1/units').then(
    (/** @type {Unit[]} */ units) => {
      const current = units.filter((u) => !u.valid_to).sort((a, b) => a.name.localeCompare(b.name, 'vi'));
      replace(
        el,
        section(t('console.units.tree'), tree(context, units)),
        section(t('console.units.rename'), renameForm(context, current)),
        section(t('console.units.merge'), mergeForm(context, current, units)),
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.nav.units'), el };
}

/**
 * @param {Context} context
 * @param {Unit[]} units
 */
function tree(context, units) {
  const byParent = new Map();
  for (const unit of units.filter((u) => !u.valid_to)) {
    const list = byParent.get(unit.parent_id) ?? [];
    list.push(unit);
    byParent.set(unit.parent_id, list);
  }
  const mergedInto = new Map();
  for (const unit of units.filter((u) => u.merged_into_id)) {
    const list = mergedInto.get(unit.merged_into_id) ?? [];
    list.push(unit);
    mergedInto.set(unit.merged_into_id, list);
  }
  const known = new Set(units.filter((u) => !u.valid_to).map((u) => u.id));
  /** @param {Unit} unit @returns {HTMLElement} */
  const node = (unit) => {
    const history = h('div', { class: 'history', hidden: true, 'data-testid': 'unit-history' });
    const toggle = h('button', {
      type: 'button',
      class: 'small',
      'aria-expanded': 'false',
      onclick: async () => {
        const open = toggle.getAttribute('aria-expanded') === 'true';
        toggle.setAttribute('aria-expanded', String(!open));
        history.hidden = open;
        if (open) return;
        replace(history, loading());
        try {
          const events = await context.api.request('GET', `/api/v1/units/${unit.id}/history`);
          replace(history, historyList(events.items, mergedInto.get(unit.id) ?? []));
        } catch (error) {
          replace(history, errorBox(error));
        }
      },
    }, t('console.units.history'));
    const children = (byParent.get(unit.id) ?? []).sort((/** @type {Unit} */ a, /** @type {Unit} */ b) => a.name.localeCompare(b.name, 'vi'));
    return h(
      'li',
      { 'data-unit': unit.id },
      h('span', { class: 'unit-name' }, unit.name),
      ' ',
      h('span', { class: 'muted small' }, `${t(`console.kind.${unit.kind}`)} · ${unit.code}`),
      ' ',
      toggle,
      history,
      children.length ? h('ul', null, children.map(node)) : null,
    );
  };
  const roots = units.filter((u) => !u.valid_to && (!u.parent_id || !known.has(u.parent_id)));
  return h('ul', { class: 'unit-tree', 'data-testid': 'unit-tree' }, roots.map(node));
}

/**
 * @param {any[]} events
 * @param {Unit[]} absorbed units merged into this one
 */
function historyList(events, absorbed) {
  const lines = [
    ...events.map((e) =>
      e.kind === 'rename'
        ? t('console.units.renamed', { date: formatDate(e.effective_date), old: e.old_name ?? '', name: e.new_name ?? '' })
        : t('console.units.merged_away', { date: formatDate(e.effective_date), name: e.new_name ?? '' }),
    ),
    ...absorbed.map((u) => t('console.units.absorbed', { name: u.name, date: u.valid_to ? formatDate(u.valid_to) : '' })),
  ];
  return lines.length ? h('ul', null, lines.map((line) => h('li', null, line))) : h('p', { class: 'muted' }, t('console.units.no_history'));
}

/**
 * @param {Context} context
 * @param {Unit[]} current
 */
function renameForm(context, current) {
  const unit = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'rename-unit' }, current.map((u) => h('option', { value: u.id }, u.name))));
  const name = /** @type {HTMLInputElement} */ (h('input', { 'data-testid': 'rename-name', maxlength: 200 }));
  const date = /** @type {HTMLInputElement} */ (h('input', { type: 'date', 'data-testid': 'rename-date', value: today() }));
  const preview = h('p', { class: 'banner', hidden: true, 'data-testid': 'rename-preview' });
  const apply = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', disabled: true, 'data-testid': 'rename-apply' }, t('console.units.apply_rename')));
  const form = apiForm(
    context,
    { class: 'form grid' },
    async () => {
      await context.api.request('POST', `/api/v1/units/${unit.value}/rename`, { body: { name: name.value.trim(), effective_date: date.value || null } });
      context.rerender();
    },
    field(t('console.unit'), unit, 'unit_id'),
    field(t('console.units.new_name'), name, 'name'),
    field(t('console.units.from'), date, 'effective_date'),
    formMessage(),
    h(
      'div',
      { class: 'form-actions' },
      h('button', {
        type: 'button',
        'data-testid': 'rename-preview-button',
        onclick: () => {
          const old = current.find((u) => u.id === unit.value);
          replace(preview, t('console.units.rename_preview', { old: old?.name ?? '', name: name.value.trim(), date: date.value ? formatDate(date.value) : '' }));
          preview.hidden = false;
          apply.disabled = !name.value.trim();
        },
      }, t('console.units.preview')),
      apply,
    ),
    preview,
  );
  for (const control of [unit, name, date]) control.addEventListener('input', () => (apply.disabled = true));
  return form;
}

/**
 * @param {Context} context
 * @param {Unit[]} current
 * @param {Unit[]} units
 */
function mergeForm(context, current, units) {
  const grassroots = current.filter((u) => u.parent_id);
  /** @type {Set<string>} */
  const sources = new Set();
  const sourceList = h(
    'fieldset',
    { class: 'sources', 'data-testid': 'merge-sources' },
    h('legend', null, t('console.units.sources')),
    grassroots.map((u) => {
      const id = `merge-source-${u.id}`;
      return h(
        'div',
        { class: 'check' },
        h('input', {
          type: 'checkbox',
          id,
          value: u.id,
          onchange: (/** @type {Event} */ e) => {
            if (/** @type {HTMLInputElement} */ (e.target).checked) sources.add(u.id);
            else sources.delete(u.id);
            apply.disabled = true;
          },
        }),
        h('label', { for: id }, u.name),
      );
    }),
  );
  const target = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'merge-target' }, current.map((u) => h('option', { value: u.id }, u.name))));
  const date = /** @type {HTMLInputElement} */ (h('input', { type: 'date', 'data-testid': 'merge-date', value: today() }));
  const preview = h('div', { 'data-testid': 'merge-preview', 'aria-live': 'polite' });
  const apply = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', disabled: true, 'data-testid': 'merge-apply' }, t('console.units.apply_merge')));
  target.addEventListener('change', () => (apply.disabled = true));
  date.addEventListener('input', () => (apply.disabled = true));
  const form = apiForm(
    context,
    { class: 'form' },
    async () => {
      const outcome = await context.api.request('POST', '/api/v1/units/merge', {
        body: { source_ids: [...sources], target_id: target.value, effective_date: date.value },
      });
      context.rerender();
      // Said after the redraw, on the new page.
      document.querySelector('[data-testid=screen-title]')?.after(
        h('p', { class: 'banner', role: 'status', 'data-testid': 'merge-done' }, t('console.units.merged', { name: outcome.target.name, people: outcome.people_moved, units: outcome.units_moved })),
      );
    },
    sourceList,
    h('div', { class: 'form grid' }, field(t('console.units.target'), target, 'target_id'), field(t('console.units.from'), date, 'effective_date')),
    formMessage(),
    h(
      'div',
      { class: 'form-actions' },
      h('button', {
        type: 'button',
        'data-testid': 'merge-preview-button',
        onclick: async () => {
          replace(preview, loading());
          try {
            const chosen = [...sources];
            const people = (await Promise.all(chosen.map((id) => all(context.api, '/api/v1/people', { unit_id: id })))).flat();
            const moving = units.filter((u) => !u.valid_to && u.parent_id && chosen.includes(u.parent_id));
            const into = current.find((u) => u.id === target.value);
            replace(
              preview,
              h('p', { class: 'banner' }, t('console.units.merge_preview', {
                sources: chosen.map((id) => current.find((u) => u.id === id)?.name).join(', '),
                target: into?.name ?? '',
                date: date.value ? formatDate(date.value) : '',
                people: people.length,
                units: moving.length,
              })),
              people.length
                ? h('ul', { class: 'people-moving', 'data-testid': 'merge-people' }, people.map((p) => h('li', { 'data-person': p.id }, `${p.full_name} · ${t(`position.${p.position}`)}`)))
                : null,
            );
            apply.disabled = chosen.length === 0;
          } catch (error) {
            replace(preview, errorBox(error));
          }
        },
      }, t('console.units.preview')),
      apply,
    ),
    preview,
  );
  return form;
}
