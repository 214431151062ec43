// The staff console at `/`: sign-in, the navigation and the screens. Administrators see every
// screen; a trainer sees their own classes, exactly what the API lets their token see (the
// console only uses the public API). Nothing is ever inserted as HTML.

import { Api, ApiError, OfflineError } from '/shared/api.js';
import { h, replace } from '/shared/dom.js';
import { codeText, language, setLanguage, t } from '/shared/i18n.js';
import { courseScreen, coursesScreen, newCourseScreen } from './courses.js';
import { dashboardScreen, unitCoverageScreen } from './dashboard.js';
import { importScreen } from './imports.js';
import { editPlanScreen, newPlanScreen, planScreen, plansScreen } from './plans.js';
import { reviewScreen } from './review.js';
import { unitsScreen } from './units.js';
import { accountsScreen } from './accounts.js';
import { errorText, plansTraining } from './ui.js';

const SESSION_KEY = 'diemdanh.console.session';

const api = new Api({
  load: async () => {
    const kept = localStorage.getItem(SESSION_KEY);
    return kept ? JSON.parse(kept) : null;
  },
  save: async (session) => {
    if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else localStorage.removeItem(SESSION_KEY);
  },
});

const root = /** @type {HTMLElement} */ (document.getElementById('console'));

/**
 * What a screen function gives back: its title and its element (filled in as data arrives).
 * @typedef {{title: string, el: HTMLElement}} Screen
 * @typedef {{api: Api, user: import('/shared/api.js').User, go: (hash: string) => void,
 *   rerender: () => void}} Context
 */

boot();

async function boot() {
  await api.init();
  window.addEventListener('hashchange', render);
  render();
}

function route() {
  return location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
}

function render() {
  const session = api.session;
  if (!session) {
    replace(root, signInScreen());
    document.title = `${t('console.name')} – ${t('signin.title')}`;
    return;
  }
  const user = session.user;
  /** @type {Context} */
  const context = { api, user, go: (hash) => (location.hash = hash), rerender: render };
  const [name, id, tab] = route();
  const admin = user.role === 'admin';
  // An organiser has the admin's planning screens, limited by the server to their subtree; the
  // unit tree and its reorganisation stay the province's.
  const plans = plansTraining(user);
  /** @type {Screen} */
  let screen;
  if (user.role === 'trainee') {
    screen = { title: t('console.name'), el: h('p', { class: 'banner' }, t('console.trainee'), ' ', h('a', { href: '/app/' }, t('console.field_app'))) };
  } else if (name === 'courses' && id === 'new' && plans) {
    screen = newCourseScreen(context);
  } else if (name === 'courses' && id) {
    screen = courseScreen(context, id, tab || 'overview');
  } else if (name === 'courses' || (!plans && !name)) {
    screen = coursesScreen(context);
  } else if (name === 'units' && !id && admin) {
    screen = unitsScreen(context);
  } else if (name === 'accounts' && plans) {
    screen = accountsScreen(context);
  } else if (name === 'review' && plans) {
    screen = reviewScreen(context);
  } else if (name === 'plans' && id === 'new' && plans) {
    screen = newPlanScreen(context);
  } else if (name === 'plans' && id && tab === 'edit' && plans) {
    screen = editPlanScreen(context, id);
  } else if (name === 'plans' && id && plans) {
    screen = planScreen(context, id);
  } else if (name === 'plans' && plans) {
    screen = plansScreen(context);
  } else if (name === 'import' && plans) {
    screen = importScreen(context);
  } else if (name === 'units' && id && plans) {
    screen = unitCoverageScreen(context, id);
  } else if (plans && (!name || name === 'dashboard')) {
    screen = dashboardScreen(context);
  } else {
    screen = { title: t('console.not_found'), el: h('p', { class: 'banner' }, t('console.not_found')) };
  }
  document.title = `${screen.title} – ${t('console.name')}`;
  const current = name || (plans ? 'dashboard' : 'courses');
  replace(
    root,
    h('a', { class: 'skip', href: '#main', onclick: skipToMain }, t('console.skip')),
    header(user),
    h(
      'div',
      { class: 'layout' },
      navigation(user, current),
      h('main', { id: 'main', tabindex: '-1' }, h('h1', { 'data-testid': 'screen-title' }, screen.title), screen.el),
    ),
  );
}

/** @param {Event} event */
function skipToMain(event) {
  event.preventDefault();
  document.getElementById('main')?.focus();
}

/** @param {import('/shared/api.js').User} user */
function header(user) {
  return h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, t('console.name')),
    h('span', { class: 'who', 'data-testid': 'who' }, t('console.signed_in_as', { name: user.display_name, role: t(`role.${user.role}`) })),
    languageSwitch(),
    h('button', { type: 'button', class: 'signout', 'data-testid': 'sign-out', onclick: signOut }, t('settings.sign_out')),
  );
}

function languageSwitch() {
  const select = h(
    'select',
    {
      id: 'language',
      'data-testid': 'language',
      onchange: (/** @type {Event} */ e) => {
        setLanguage(/** @type {'vi'|'en'} */ (/** @type {HTMLSelectElement} */ (e.target).value));
        render();
      },
    },
    h('option', { value: 'vi' }, t('lang.vi')),
    h('option', { value: 'en' }, t('lang.en')),
  );
  /** @type {HTMLSelectElement} */ (select).value = language();
  return h('span', { class: 'lang' }, h('label', { for: 'language', class: 'visually-hidden' }, t('lang.label')), select);
}

/**
 * @param {import('/shared/api.js').User} user
 * @param {string} current
 */
function navigation(user, current) {
  const admin = user.role === 'admin';
  const items = plansTraining(user)
    ? [
        ['dashboard', '#/', t('console.nav.dashboard')],
        ['courses', '#/courses', t('console.nav.courses')],
        ['plans', '#/plans', t('console.nav.plans')],
        ['import', '#/import', t('console.nav.import')],
        ['review', '#/review', t('console.nav.review')],
        ...(admin ? [['units', '#/units', t('console.nav.units')]] : []),
        ['accounts', '#/accounts', t('console.nav.accounts')],
      ]
    : [['courses', '#/courses', t('console.nav.my_courses')]];
  return h(
    'nav',
    { class: 'side', 'aria-label': t('console.nav.label') },
    h(
      'ul',
      null,
      items.map(([key, href, label]) =>
        h('li', null, h('a', { href, 'aria-current': key === current ? 'page' : null }, label)),
      ),
    ),
    h('p', { class: 'small' }, h('a', { href: '/app/' }, t('console.field_app'))),
  );
}

async function signOut() {
  await api.logout();
  location.hash = '';
  render();
}

function signInScreen() {
  const username = h('input', { id: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = h('p', { class: 'error', role: 'alert', 'data-testid': 'signin-error' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('signin.submit'));
  const form = h(
    'form',
    {
      class: 'signin',
      onsubmit: async (/** @type {Event} */ event) => {
        event.preventDefault();
        /** @type {HTMLButtonElement} */ (submit).disabled = true;
        replace(message);
        try {
          const name = `${t('console.device_name')} (${navigator.platform || 'web'})`;
          await api.login(/** @type {HTMLInputElement} */ (username).value.trim(), /** @type {HTMLInputElement} */ (password).value, name);
          render();
        } catch (error) {
          const text =
            error instanceof OfflineError
              ? t('console.offline')
              : error instanceof ApiError
                ? t('signin.failed', { message: codeText(error.code, error.message) })
                : errorText(error);
          replace(message, text);
          /** @type {HTMLButtonElement} */ (submit).disabled = false;
        }
      },
    },
    h('h1', null, t('console.name')),
    h('p', { class: 'muted' }, t('console.signin_intro')),
    h('div', { class: 'field' }, h('label', { for: 'username' }, t('signin.username')), username),
    h('div', { class: 'field' }, h('label', { for: 'password' }, t('signin.password')), password),
    message,
    submit,
  );
  return h('main', { class: 'signin-page', id: 'main' }, form, h('div', { class: 'signin-lang' }, languageSwitch()));
}
