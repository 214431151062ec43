// Accounts and devices: create trainer and trainee accounts (a trainee's linked to a person of the
// roster), reset a password, disable and enable; each account's devices with the last sync and
// the clock flag, and revoking a device (its next request is refused).

import { h, replace } from '/shared/dom.js';
import { formatDateTime, t } from '/shared/i18n.js';
import { all, apiForm, errorBox, errorText, field, formMessage, loading, section, tableSection } from './ui.js';

/** @typedef {import('./main.js').Context} Context */

/** @param {Context} context */
export function accountsScreen(context) {
  const el = h('div', null, loading());
  Promise.all([all(context.api, '/api/v1/users'), all(context.api, '/api/v1/devices')]).then(
    ([users, devices]) => {
      const names = new Map(users.map((u) => [u.id, u]));
      replace(
        el,
        section(t('console.accounts.create'), createForm(context)),
        tableSection({
          caption: t('console.accounts.list', { count: users.length }),
          testid: 'accounts-table',
          rows: users,
          sortKey: 'username',
          rowAttrs: (u) => ({ 'data-user': u.id }),
          columns: [
            { key: 'username', label: t('signin.username'), sort: (u) => u.username, cell: (u) => u.username },
            { key: 'name', label: t('console.accounts.display_name'), sort: (u) => u.display_name, cell: (u) => u.display_name },
            { key: 'role', label: t('console.accounts.role'), sort: (u) => u.role, cell: (u) => t(`role.${u.role}`) },
            { key: 'state', label: t('console.accounts.state'), sort: (u) => (u.disabled_at ? 1 : 0), cell: (u) => (u.disabled_at ? t('console.accounts.disabled') : t('console.accounts.active')) },
            { key: 'actions', label: t('console.actions'), cell: (u) => accountActions(context, u) },
          ],
        }),
        tableSection({
          caption: t('console.devices.list', { count: devices.length }),
          testid: 'devices-table',
          rows: devices,
          sortKey: 'seen',
          descending: true,
          rowAttrs: (d) => ({ 'data-device': d.id }),
          columns: [
            { key: 'user', label: t('console.devices.account'), sort: (d) => names.get(d.user_id)?.username ?? '', cell: (d) => names.get(d.user_id)?.display_name ?? d.user_id },
            { key: 'name', label: t('console.devices.name'), sort: (d) => d.name, cell: (d) => d.name },
            { key: 'seen', label: t('console.devices.last_seen'), sort: (d) => d.last_seen_at ?? '', cell: (d) => (d.last_seen_at ? formatDateTime(d.last_seen_at) : '–') },
            { key: 'clock', label: t('console.devices.clock'), sort: (d) => (d.clock_flagged_at ? 1 : 0), cell: (d) => (d.clock_flagged_at ? h('span', { class: 'error' }, t('console.devices.clock_wrong', { when: formatDateTime(d.clock_flagged_at) })) : t('console.devices.clock_ok')) },
            {
              key: 'revoke',
              label: t('console.actions'),
              cell: (d) =>
                d.revoked_at
                  ? t('console.devices.revoked', { when: formatDateTime(d.revoked_at) })
                  : d.id === context.api.session?.device_id
                    ? t('console.devices.this_one')
                    : h('button', {
                        type: 'button',
                        class: 'danger small',
                        'data-testid': 'revoke',
                        onclick: async (/** @type {Event} */ e) => {
                          if (!confirm(t('console.devices.confirm_revoke', { name: d.name }))) return;
                          try {
                            await context.api.request('POST', `/api/v1/devices/${d.id}/revoke`);
                            context.rerender();
                          } catch (error) {
                            /** @type {HTMLElement} */ (e.target).after(errorBox(error));
                          }
                        },
                      }, t('console.devices.revoke')),
            },
          ],
        }),
      );
    },
    (error) => replace(el, errorBox(error)),
  );
  return { title: t('console.nav.accounts'), el };
}

/**
 * Reset a password (typed by the administrator, given to the person), disable or enable.
 * @param {Context} context
 * @param {any} user
 */
function accountActions(context, user) {
  const message = h('span', { class: 'small', role: 'status' });
  const password = /** @type {HTMLInputElement} */ (h('input', { type: 'password', autocomplete: 'new-password', 'aria-label': t('console.accounts.new_password_for', { name: user.username }), placeholder: t('console.accounts.new_password'), class: 'inline-input', 'data-testid': 'new-password' }));
  const reset = h('form', {
    class: 'inline-form',
    onsubmit: async (/** @type {Event} */ event) => {
      event.preventDefault();
      try {
        await context.api.request('POST', `/api/v1/users/${user.id}/password`, { body: { new_password: password.value } });
        password.value = '';
        replace(message, t('console.accounts.password_set'));
      } catch (error) {
        replace(message, h('span', { class: 'error' }, errorText(error)));
      }
    },
  }, password, h('button', { type: 'submit', class: 'small', 'data-testid': 'reset-password' }, t('console.accounts.reset')));
  const toggle = h('button', {
    type: 'button',
    class: 'small',
    'data-testid': user.disabled_at ? 'enable' : 'disable',
    disabled: user.id === context.user.id,
    onclick: async () => {
      try {
        await context.api.request('PATCH', `/api/v1/users/${user.id}`, { body: { disabled: !user.disabled_at } });
        context.rerender();
      } catch (error) {
        replace(message, h('span', { class: 'error' }, errorText(error)));
      }
    },
  }, user.disabled_at ? t('console.accounts.enable') : t('console.accounts.disable'));
  return h('div', { class: 'account-actions' }, reset, toggle, message);
}

/** @param {Context} context */
function createForm(context) {
  const username = /** @type {HTMLInputElement} */ (h('input', { autocomplete: 'off', 'data-testid': 'account-username' }));
  const display = /** @type {HTMLInputElement} */ (h('input', { 'data-testid': 'account-name' }));
  // An admin also makes organisers, each bound to a unit; an organiser makes only trainer and
  // trainee accounts for the people of their unit (the server refuses the rest).
  const admin = context.user.role === 'admin';
  const roles = admin ? ['trainer', 'trainee', 'organiser'] : ['trainer', 'trainee'];
  const role = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'account-role' }, roles.map((r) => h('option', { value: r }, t(`role.${r}`)))));
  const unit = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'account-unit' }, h('option', { value: '' }, t('console.course.no_unit'))));
  if (admin) {
    all(context.api, '/api/v1/units', { current: true }).then(
      (units) => unit.append(...units.map((/** @type {any} */ u) => h('option', { value: u.id }, u.name))),
      () => {},
    );
  }
  const search = /** @type {HTMLInputElement} */ (h('input', { type: 'search', 'data-testid': 'account-person-search', autocomplete: 'off' }));
  const person = /** @type {HTMLSelectElement} */ (h('select', { 'data-testid': 'account-person' }, h('option', { value: '' }, t('console.accounts.no_person'))));
  const password = /** @type {HTMLInputElement} */ (h('input', { type: 'password', autocomplete: 'new-password', 'data-testid': 'account-password' }));
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let typing;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(async () => {
      try {
        const page = await context.api.request('GET', '/api/v1/people', { query: { q: search.value.trim() || undefined, limit: 50 } });
        replace(person, h('option', { value: '' }, t('console.accounts.no_person')), page.items.map((/** @type {any} */ p) => h('option', { value: p.id }, p.full_name)));
        if (page.items.length) person.value = page.items[0].id;
      } catch {
        // The list stays as it was; the request's error shows when the form is sent.
      }
    }, 250);
  });
  const form = apiForm(
    context,
    { class: 'form grid', novalidate: true },
    async () => {
      await context.api.request('POST', '/api/v1/users', {
        body: {
          username: username.value.trim(),
          display_name: display.value.trim() || null,
          role: role.value,
          person_id: person.value || null,
          unit_id: role.value === 'organiser' ? unit.value || null : null,
          password: password.value,
        },
      });
      context.rerender();
    },
    field(t('signin.username'), username, 'username'),
    field(t('console.accounts.display_name'), display, 'display_name'),
    field(t('console.accounts.role'), role, 'role'),
    admin ? field(t('console.accounts.unit'), unit, 'unit_id') : null,
    field(t('console.accounts.find_person'), search, 'person_search'),
    field(t('console.accounts.person'), person, 'person_id'),
    field(t('console.accounts.password'), password, 'password'),
    formMessage(),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'account-create' }, t('console.accounts.create'))),
  );
  return form;
}
