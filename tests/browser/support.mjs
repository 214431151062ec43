// The vocabulary of the field app's browser tests: a Chromium from Debian's package driven by
// playwright-core, a phone-sized page signed in as a demo persona, the admin API beside it.

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

export const BASE = process.env.DIEMDANH_BASE || 'http://127.0.0.1:8080';
export const ARTIFACTS = process.env.DIEMDANH_ARTIFACTS || path.resolve('artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const PHONE = { width: 360, height: 740 };

export const PERSONAS = {
  admin: { username: 'admin', password: 'diemdanh-admin' },
  tuan: { username: 'tuan.le', password: 'demo-trainer-2' },
  hoa: { username: 'hoa.nguyen', password: 'demo-trainer-1' },
  trainee: { username: 'hocvien.demo', password: 'demo-trainee-1' },
  organiser: { username: 'doan.thongnhat', password: 'demo-organiser-2' },
};

/** The flags a headless Chromium needs on this closed network. */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** @param {string[]} [extra] */
export async function launch(extra = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...extra] });
}

/** The admin API, as an administrator (tokens taken when needed). */
export class AdminApi {
  constructor(persona = PERSONAS.admin) {
    this.persona = persona;
    this.token = null;
  }

  async login() {
    const answer = await call('POST', '/api/v1/auth/login', null, {
      ...this.persona,
      device_name: 'browser test',
    });
    this.token = answer.body.access_token;
    return answer.body;
  }

  async call(method, pathname, body, { expect } = {}) {
    if (!this.token) await this.login();
    let answer = await call(method, pathname, this.token, body);
    if (answer.status === 401) {
      await this.login();
      answer = await call(method, pathname, this.token, body);
    }
    if (expect !== undefined) {
      assert.equal(answer.status, expect, `${method} ${pathname}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  get(pathname) {
    return this.call('GET', pathname, undefined, { expect: 200 });
  }

  post(pathname, body, expect = 201) {
    return this.call('POST', pathname, body, { expect });
  }

  /** Every item of a paged list. */
  async all(pathname) {
    const items = [];
    for (let offset = 0; ; offset += 500) {
      const sep = pathname.includes('?') ? '&' : '?';
      const page = await this.get(`${pathname}${sep}limit=500&offset=${offset}`);
      items.push(...page.items);
      if (items.length >= page.total || page.items.length === 0) return items;
    }
  }
}

async function call(method, pathname, token, body, headers = {}) {
  const response = await fetch(BASE + pathname, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined && body !== null && !(body instanceof Uint8Array)
        ? { 'Content-Type': 'application/json' }
        : {}),
      ...headers,
    },
    body: body instanceof Uint8Array ? body : body !== undefined && body !== null ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON.
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export { call as rawCall };

/** Where the users are: pages show times in the device's zone, as phones in Gia Lai have it. */
export const TIME_ZONE = 'Asia/Ho_Chi_Minh';

/**
 * A phone: a browser context at 360×740 with the field app open.
 * @param {import('playwright-core').Browser} browser
 */
export async function phone(browser, options = {}, base = BASE) {
  const context = await browser.newContext({
    viewport: PHONE,
    deviceScaleFactor: 1,
    timezoneId: TIME_ZONE,
    ...options,
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') console.error('console:', message.text());
  });
  await page.goto(`${base}/app/`);
  return { context, page };
}

/**
 * Signs in on the phone and waits for the first sync and the service worker.
 * @param {import('playwright-core').Page} page
 * @param {{username: string, password: string}} persona
 */
export async function signIn(page, persona, deviceName = 'Điện thoại thử') {
  await page.fill('#username', persona.username);
  await page.fill('#password', persona.password);
  await page.fill('#device', deviceName);
  await page.click('form.signin button[type=submit]');
  await waitSynced(page);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });
}

/** Waits until a sync has finished and nothing is left to send; a sync that failed fails. */
export async function waitSynced(page, timeout = 90_000) {
  let outcome;
  try {
    const handle = await page.waitForFunction(
      () => {
        const chip = document.querySelector('[data-testid=sync-chip]');
        const state = chip?.getAttribute('data-state');
        if (state === 'error') return `sync failed: ${chip?.getAttribute('title')}`;
        return state === 'idle' && chip?.getAttribute('data-unsent') === '0' && 'ok';
      },
      null,
      { timeout },
    );
    outcome = await handle.jsonValue();
  } catch (error) {
    const chip = await page
      .$eval('[data-testid=sync-chip]', (el) => `${el.getAttribute('data-state')}, ${el.textContent}`)
      .catch(() => 'no sync chip on the page');
    throw new Error(`no finished sync within ${timeout} ms (the app says: ${chip}): ${error}`);
  }
  assert.equal(outcome, 'ok');
}

/** Presses "sync now" on the sync screen and waits for it to finish. */
export async function syncNow(page) {
  await page.goto(`${BASE}/app/#/sync`);
  await page.click('[data-testid=sync-now]');
  await page.waitForFunction(() => {
    const button = document.querySelector('[data-testid=sync-now]');
    return button && !button.hasAttribute('disabled') && !(/** @type {HTMLButtonElement} */ (button).disabled);
  });
  await waitSynced(page);
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: false });
}

/** The demo's three-day class and its sessions, as the admin API has them. */
export async function demoClass(admin) {
  const courses = await admin.all('/api/v1/courses');
  const course = courses.find((c) => c.code === 'BD-BTPBT-2026');
  assert.ok(course, 'the demo three-day class');
  const sessions = (await admin.all(`/api/v1/sessions?course_id=${course.id}`)).sort((a, b) =>
    a.starts_at.localeCompare(b.starts_at),
  );
  const enrollments = await admin.all(`/api/v1/enrollments?course_id=${course.id}`);
  return { course, sessions, enrollments: enrollments.filter((e) => e.status !== 'withdrawn') };
}

/** The roll of a session: each row's person id and pressed status. */
export async function rollState(page) {
  return page.$$eval('[data-testid=roll] li.row', (rows) =>
    rows.map((row) => ({
      person: row.getAttribute('data-person'),
      status: row.querySelector('button.mark[aria-pressed=true]')?.getAttribute('data-status') || null,
    })),
  );
}

/**
 * An HTTP proxy in front of the server whose next material download can be cut after a number
 * of bytes: the connection is destroyed mid-body, as when the signal goes.
 */
export async function cuttingProxy() {
  const target = new URL(BASE);
  let cut = null;
  const server = http.createServer((request, response) => {
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: request.method,
        path: request.url,
        headers: { ...request.headers, host: target.host },
      },
      (answer) => {
        response.writeHead(answer.statusCode || 502, answer.headers);
        const limit = request.url.includes('/content') ? cut : null;
        if (limit === null) {
          answer.pipe(response);
          return;
        }
        cut = null;
        let sent = 0;
        answer.on('data', (chunk) => {
          if (sent + chunk.length >= limit) {
            response.write(chunk.subarray(0, limit - sent));
            answer.destroy();
            setTimeout(() => response.socket?.destroy(), 50);
            sent = limit;
            return;
          }
          sent += chunk.length;
          response.write(chunk);
        });
        answer.on('end', () => response.end());
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    /** @param {number} bytes */
    cutAfter(bytes) {
      cut = bytes;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
