// The field app (/app/) in a real Chromium against a real diemdanh server with the demo data:
// the roll taken offline survives a reload and reaches the server once; two trainers converge;
// a QR badge shown to a fake camera marks the right trainee; a trainer unassigned while offline
// loses nothing (the server quarantines it) and the course leaves the device; a revoked device
// keeps its changes until it signs in again; a material download cut half-way resumes and opens
// offline; every screen at 360×740 (screenshots in DIEMDANH_ARTIFACTS).
//
// Run by tests/it/field_app.rs, once per backend, with DIEMDANH_BASE set.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import QRCode from 'qrcode';
import {
  AdminApi,
  BASE,
  cuttingProxy,
  PERSONAS,
  demoClass,
  launch,
  phone,
  rawCall,
  rollState,
  screenshot,
  signIn,
  syncNow,
  waitSynced,
} from './support.mjs';

const admin = new AdminApi();
/** @type {import('playwright-core').Browser} */
let browser;
let demo;

before(async () => {
  browser = await launch();
  demo = await demoClass(admin);
  assert.ok(demo.enrollments.length >= 100, `the demo class has ${demo.enrollments.length} trainees`);
});

after(async () => {
  await browser?.close();
});

/**
 * Tuấn signs in on a phone named `deviceName`, which goes offline and opens the roll of `session`;
 * `shown` is what tells the roll is there.
 * @param {import('playwright-core').BrowserContext} context
 * @param {import('playwright-core').Page} page
 * @param {string} deviceName
 * @param {{id: string}} session
 */
async function openRollOffline(context, page, deviceName, session, shown = '[data-testid=roll] li.row') {
  await signIn(page, PERSONAS.tuan, deviceName);
  await context.setOffline(true);
  await page.goto(`${BASE}/app/#/session/${session.id}`);
  await page.waitForSelector(shown);
}

/** The status the first scenario gives the i-th trainee of the roll. */
function plannedStatus(i) {
  if (i % 10 === 3) return 'absent';
  if (i % 7 === 1) return 'late';
  if (i % 13 === 5) return 'excused';
  return 'present';
}

describe('the field app', () => {
  test('a trainer takes the roll of 120 offline, finds it after a reload offline, and it reaches the server once', async () => {
    const session = demo.sessions[0];
    const { context, page } = await phone(browser);
    // The server under test gives tokens of 45 s: the app must refresh them by itself.
    const refreshes = [];
    page.on('response', (response) => {
      if (response.url().endsWith('/api/v1/auth/refresh')) refreshes.push(response.status());
    });
    await screenshot(page, '01-sign-in');
    await signIn(page, PERSONAS.tuan, 'Điện thoại lớp A');
    const signedInAt = Date.now();
    await screenshot(page, '02-courses');
    await page.goto(`${BASE}/app/#/course/${demo.course.id}`);
    await page.waitForSelector('ul.sessions');
    await screenshot(page, '03-course-sessions');

    await context.setOffline(true);
    await page.goto(`${BASE}/app/#/session/${session.id}`);
    await page.waitForSelector('[data-testid=roll] li.row');
    const rows = await rollState(page);
    assert.equal(rows.length, demo.enrollments.length, 'every enrolled trainee is on the roll');
    const planned = new Map(rows.map((row, i) => [row.person, plannedStatus(i)]));
    for (const [person, status] of planned) {
      await page.click(`li.row[data-person="${person}"] button[data-status=${status}]`);
    }
    const noted = rows[0].person;
    await page.click(`li.row[data-person="${noted}"] button.note-button`);
    await page.fill('#note-text', '  Ngồi bàn đầu, phát biểu tốt  ');
    await page.fill('#checked-in-time', '07:05');
    await screenshot(page, '05-roll-note');
    await page.click('.overlay button.primary');
    await screenshot(page, '04-roll');
    const present = [...planned.values()].filter((s) => s === 'present').length;
    await page.waitForFunction(
      (text) => (document.querySelector('[data-testid=roll-counts]')?.textContent || '').includes(text),
      `${present} / ${rows.length}`,
    );

    // Nothing left the phone while it was offline.
    const before = await admin.all(`/api/v1/attendance?session_id=${session.id}`);
    const changedBefore = before.filter((a) => planned.has(a.person_id) && a.status === planned.get(a.person_id));
    assert.ok(changedBefore.length < planned.size, 'the marks are not on the server yet');

    // A reload with no network: the app starts from the service worker and IndexedDB.
    await page.reload();
    await page.waitForSelector('[data-testid=roll] li.row');
    const reloaded = await rollState(page);
    assert.deepEqual(
      new Map(reloaded.map((r) => [r.person, r.status])),
      planned,
      'every mark is still there after the reload',
    );
    await page.waitForFunction(() => /Ngoại tuyến/.test(document.querySelector('[data-testid=sync-chip]')?.textContent || ''));
    assert.match(await page.textContent(`li.row[data-person="${noted}"] .note-text`), /Ngồi bàn đầu, phát biểu tốt/);

    if (process.env.DIEMDANH_ACCESS_TOKEN_TTL_SECS) {
      // Back online only once the token is inside the app's refresh window (web/shared/api.js
      // refreshes 30 s before expiry), so that the sync must refresh it first, however fast
      // the steps before ran.
      const refreshFrom = signedInAt + (Number(process.env.DIEMDANH_ACCESS_TOKEN_TTL_SECS) - 30) * 1000;
      await page.waitForTimeout(Math.max(0, refreshFrom + 500 - Date.now()));
    }
    await context.setOffline(false);
    await waitSynced(page);
    const after = await admin.all(`/api/v1/attendance?session_id=${session.id}`);
    const byPerson = new Map();
    for (const record of after) {
      assert.ok(!byPerson.has(record.person_id), `one record per trainee (${record.person_id})`);
      byPerson.set(record.person_id, record);
    }
    for (const [person, status] of planned) {
      assert.equal(byPerson.get(person)?.status, status, `the server holds ${person}'s mark`);
    }
    assert.equal(byPerson.get(noted).note, 'Ngồi bàn đầu, phát biểu tốt');
    const arrival = await page.evaluate((iso) => {
      const at = new Date(iso);
      return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    }, byPerson.get(noted).checked_in_at);
    assert.equal(arrival, '07:05', 'the arrival time the trainer set');
    if (process.env.DIEMDANH_ACCESS_TOKEN_TTL_SECS) {
      assert.ok(refreshes.length >= 1, 'the access token was refreshed');
      assert.ok(refreshes.every((status) => status === 200), `every refresh succeeded: ${refreshes}`);
    }
    assert.ok(byPerson.get(rows[0].person).checked_in_at || planned.get(rows[0].person) === 'absent');
    await context.close();
  });

  test('two trainers mark the same trainee differently offline; both devices end with the server’s answer and the loser is in the conflict log', async () => {
    const session = demo.sessions[1];
    const person = demo.enrollments[5].person_id;
    const a = await phone(browser);
    const b = await phone(browser);
    await signIn(a.page, PERSONAS.tuan, 'Máy A');
    await signIn(b.page, PERSONAS.hoa, 'Máy B');
    for (const device of [a, b]) {
      await device.context.setOffline(true);
      await device.page.goto(`${BASE}/app/#/session/${session.id}`);
      await device.page.waitForSelector(`li.row[data-person="${person}"]`);
    }
    await a.page.click(`li.row[data-person="${person}"] button[data-status=late]`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await b.page.click(`li.row[data-person="${person}"] button[data-status=absent]`);

    await a.context.setOffline(false);
    await waitSynced(a.page);
    await b.context.setOffline(false);
    await waitSynced(b.page);
    await syncNow(a.page);

    const records = await admin.all(`/api/v1/attendance?session_id=${session.id}&person_id=${person}`);
    assert.equal(records.length, 1, 'one record for the trainee at the session');
    const server = records[0].status;
    assert.equal(server, 'absent', 'the later mark wins');
    for (const device of [a, b]) {
      await device.page.goto(`${BASE}/app/#/session/${session.id}`);
      await device.page.waitForSelector(`li.row[data-person="${person}"]`);
      const state = (await rollState(device.page)).find((r) => r.person === person);
      assert.equal(state.status, server, 'the device shows the server’s answer');
    }
    const conflicts = await admin.all('/api/v1/sync/conflicts?status=open');
    const logged = conflicts.filter((c) => c.record_id === records[0].id && c.field === 'status');
    assert.ok(logged.length >= 1, 'the conflict log holds the trainee’s status');
    assert.ok(
      logged.some((c) => JSON.stringify(c.losing_value) === '"late"' && JSON.stringify(c.winning_value) === '"absent"'),
      `the loser is logged: ${JSON.stringify(logged)}`,
    );
    await a.context.close();
    await b.context.close();
  });

  test('a QR badge shown to the camera marks the right trainee present, offline', async () => {
    const session = demo.sessions[2];
    const enrollment = demo.enrollments[17];
    const person = await admin.get(`/api/v1/people/${enrollment.person_id}`);
    const video = path.join(os.tmpdir(), `badge-${process.pid}.y4m`);
    writeBadgeVideo(video, `diemdanh:person:${person.id}`);
    const cameraBrowser = await launch([
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-video-capture=${video}`,
    ]);
    try {
      const { context, page } = await phone(cameraBrowser, { permissions: ['camera'] });
      await openRollOffline(context, page, 'Máy quét', session, `li.row[data-person="${person.id}"]`);
      await page.click('button:has-text("Quét mã QR")');
      await page.waitForFunction(
        (name) => (document.querySelector('[data-testid=scan-result]')?.textContent || '').includes(name),
        person.full_name,
        { timeout: 30_000 },
      );
      await screenshot(page, '06-scan');
      await page.click('.overlay button.primary');
      const state = (await rollState(page)).find((r) => r.person === person.id);
      assert.equal(state.status, 'present');
      const others = (await rollState(page)).filter((r) => r.person !== person.id && r.status !== null);
      const before = await admin.all(`/api/v1/attendance?session_id=${session.id}`);
      assert.equal(others.length, before.length, 'no one else was marked by the scan');
      assert.match(await page.textContent(`li.row[data-person="${person.id}"] .time`), /\d\d:\d\d/);
      await context.setOffline(false);
      await waitSynced(page);
      const records = await admin.all(`/api/v1/attendance?session_id=${session.id}&person_id=${person.id}`);
      assert.equal(records.length, 1);
      assert.equal(records[0].status, 'present');
      assert.ok(records[0].checked_in_at, 'the check-in time is recorded');
      await context.close();
    } finally {
      await cameraBrowser.close();
      fs.rmSync(video, { force: true });
    }
  });

  test('a trainee who came without being enrolled is found without diacritics, added and marked', async () => {
    const session = demo.sessions[3];
    const { context, page } = await phone(browser);
    await openRollOffline(context, page, 'Máy thêm học viên', session);
    const enrolled = new Set((await rollState(page)).map((r) => r.person));
    await page.click('button:has-text("Thêm học viên")');
    await page.waitForSelector('[data-testid=add-results]');
    const first = await page.textContent('[data-testid=add-results] li.result .name');
    assert.ok(first, 'the roster is on the device');
    const plain = first.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[đĐ]/g, 'd').toLowerCase();
    await page.fill('#add-search', plain);
    await screenshot(page, '07-add-trainee');
    const names = await page.$$eval('[data-testid=add-results] li.result .name', (els) => els.map((e) => e.textContent));
    assert.ok(names.includes(first), `"${plain}" finds "${first}"`);
    await page.click('[data-testid=add-results] li.result button.primary');
    // Enrolled, then marked: two changes, each shown as it is made.
    await page.waitForFunction(
      (known) =>
        [...document.querySelectorAll('[data-testid=roll] li.row')].some(
          (row) => !known.includes(row.getAttribute('data-person')) && row.querySelector('button.mark[aria-pressed=true]'),
        ),
      [...enrolled],
    );
    const rows = await rollState(page);
    const added = rows.find((r) => !enrolled.has(r.person));
    assert.ok(added, 'the person is on the roll');
    assert.equal(added.status, 'present');
    await context.setOffline(false);
    await waitSynced(page);
    const enrollment = await admin.all(`/api/v1/enrollments?course_id=${demo.course.id}&person_id=${added.person}`);
    assert.equal(enrollment.length, 1);
    assert.equal(enrollment[0].status, 'enrolled');
    const marks = await admin.all(`/api/v1/attendance?session_id=${session.id}&person_id=${added.person}`);
    assert.equal(marks.length, 1);
    assert.equal(marks[0].status, 'present');
    await context.close();
  });

  test('a revoked device is told why, keeps its unsent changes, and sends them after signing in again', async () => {
    const session = demo.sessions[4];
    const { context, page } = await phone(browser);
    await openRollOffline(context, page, 'Máy bị thu hồi', session);
    const rows = (await rollState(page)).slice(0, 2);
    for (const row of rows) await page.click(`li.row[data-person="${row.person}"] button[data-status=excused]`);
    const users = await admin.all('/api/v1/users');
    const tuan = users.find((u) => u.username === 'tuan.le');
    const devices = await admin.all(`/api/v1/devices?user_id=${tuan.id}`);
    const device = devices.find((d) => d.name === 'Máy bị thu hồi' && !d.revoked_at);
    await admin.post(`/api/v1/devices/${device.id}/revoke`, undefined, 200);

    await context.setOffline(false);
    await page.goto(`${BASE}/app/#/sync`);
    await page.click('[data-testid=sync-now]');
    await page.waitForSelector('[data-testid=signed-out]');
    assert.match(await page.textContent('[data-testid=signed-out]'), /thu hồi/);
    assert.match(await page.textContent('[data-testid=signed-out]'), /\(2\)/);
    assert.equal(await page.locator('[data-testid=unsent] li').count(), 2, 'the unsent changes stay visible');
    await screenshot(page, '08-revoked');
    await page.click('[data-testid=signed-out] button');
    assert.equal(await page.inputValue('#username'), 'tuan.le');
    // A refused sign-in is told in the app's language, not in the server's English.
    await page.fill('#username', 'khong.co.ai');
    await page.fill('#password', 'sai-mat-khau');
    await page.click('form.signin button[type=submit]');
    await page.waitForFunction(() => (document.querySelector('form.signin p.error')?.textContent || '') !== '');
    assert.equal(await page.textContent('form.signin p.error'), 'Không đăng nhập được: Sai tên đăng nhập hoặc mật khẩu.');
    await page.fill('#username', 'tuan.le');
    await page.fill('#password', PERSONAS.tuan.password);
    await page.click('form.signin button[type=submit]');
    await waitSynced(page);
    for (const row of rows) {
      const marks = await admin.all(`/api/v1/attendance?session_id=${session.id}&person_id=${row.person}`);
      assert.equal(marks.length, 1);
      assert.equal(marks[0].status, 'excused');
    }
    await context.close();
  });

  test('a trainer unassigned while offline edits are pending: the edits are in the server’s quarantine and the course leaves the device', async () => {
    const fixture = await unassignFixture();
    const { context, page } = await phone(browser);
    await signIn(page, fixture.trainer, 'Máy giảng viên tạm');
    await page.goto(`${BASE}/app/#/courses`);
    await page.waitForSelector(`a[href="#/course/${fixture.course.id}"]`);
    await context.setOffline(true);
    await page.goto(`${BASE}/app/#/session/${fixture.session.id}`);
    await page.waitForSelector('[data-testid=roll] li.row');
    for (const person of fixture.people) {
      await page.click(`li.row[data-person="${person}"] button[data-status=present]`);
    }
    await admin.call('DELETE', `/api/v1/course-trainers/${fixture.assignment.id}`, undefined, { expect: 204 });

    await context.setOffline(false);
    await waitSynced(page);
    await page.goto(`${BASE}/app/#/courses`);
    await page.waitForSelector('section.list');
    assert.equal(await page.locator(`a[href="#/course/${fixture.course.id}"]`).count(), 0, 'the course left the device');
    await page.goto(`${BASE}/app/#/sync`);
    await page.waitForSelector('[data-testid=refused] li');
    const reasons = await page.$$eval('[data-testid=refused] li', (els) => els.map((e) => e.getAttribute('data-reason')));
    assert.deepEqual(reasons, fixture.people.map(() => 'not_assigned'));
    const refused = await page.textContent('[data-testid=refused]');
    for (const name of fixture.names) assert.ok(refused.includes(name), `the refused change names ${name}`);
    await screenshot(page, '09-sync-refused');
    const quarantine = await admin.all(`/api/v1/sync/quarantine?course_id=${fixture.course.id}`);
    const kept = quarantine.filter((q) => q.reason === 'not_assigned').map((q) => q.body.fields.person_id);
    assert.deepEqual(new Set(kept), new Set(fixture.people), 'every pending edit is in quarantine');
    const server = await admin.all(`/api/v1/attendance?session_id=${fixture.session.id}`);
    assert.equal(server.length, 0, 'nothing was applied');
    await context.close();
  });

  test('a trainee’s material download cut half-way resumes by Range and the file opens offline', async () => {
    const trainee = new AdminApi(PERSONAS.trainee);
    const courses = await trainee.all('/api/v1/courses');
    assert.ok(courses.length > 0, 'the demo trainee has a class');
    const course = courses[0];
    const bytes = new Uint8Array(6 * 1024 * 1024);
    crypto.randomFillSync(bytes);
    bytes.set(new TextEncoder().encode('%PDF-1.4\n'), 0);
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    await admin.login();
    const upload = await rawCall(
      'POST',
      `/api/v1/courses/${course.id}/materials?file_name=${encodeURIComponent('Bài giảng thử.pdf')}&kind=pdf`,
      admin.token,
      bytes,
      { 'Content-Type': 'application/pdf' },
    );
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const material = upload.body;

    // The phone reaches the server through a proxy that can cut a download half-way, as a
    // connection lost in the mountains does.
    const proxy = await cuttingProxy();
    const { context, page } = await phone(browser, {}, proxy.base);
    const ranges = [];
    page.on('request', (request) => {
      if (request.url().includes(`/materials/${material.id}/content`)) ranges.push(request.headers().range || null);
    });
    await signIn(page, PERSONAS.trainee, 'Điện thoại học viên');
    await page.goto(`${proxy.base}/app/#/course/${course.id}`);
    const item = `li.material[data-material="${material.id}"]`;
    await page.waitForSelector(item);
    await screenshot(page, '10-trainee-course');
    proxy.cutAfter(2 * 1024 * 1024 + 12345);
    await page.click(`${item} button.primary`);
    await page.waitForSelector(`${item} p.error`, { timeout: 30_000 });
    await context.setOffline(true);
    await screenshot(page, '11-material-cut');
    const partial = Number(await page.getAttribute(`${item} progress`, 'value'));
    assert.ok(partial > 0 && partial < bytes.length, `part of the file is kept (${partial} bytes)`);

    await context.setOffline(false);
    await page.click(`${item} button.primary`);
    await page.waitForSelector(`${item} p.ok`, { timeout: 30_000 });
    const resumed = ranges.filter(Boolean);
    assert.equal(ranges[0], null, 'the first request asked for the whole file');
    assert.deepEqual(resumed, [`bytes=${partial}-`], 'the second asked for the rest');

    await context.setOffline(true);
    const kept = await page.evaluate(keptFileSha256, material.id);
    assert.equal(kept, sha256, 'the file kept on the device is the uploaded one');
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click(`${item} button.primary`)]);
    assert.match(popup.url(), /^blob:/, 'the file opens from the device');
    await popup.close();
    await page.goto(`${proxy.base}/app/#/materials`);
    await page.waitForSelector('[data-testid=storage-used]');
    assert.match(await page.textContent('[data-testid=storage-used]'), /6 MB/);
    await screenshot(page, '12-materials');
    await context.close();
    await proxy.close();
  });

  test('every screen works at 360×740: no sideways scrolling, touch targets of at least 44 px, labelled fields', async () => {
    const { context, page } = await phone(browser);
    const problems = [];
    const check = async (name) => {
      const found = await page.evaluate(() => {
        const issues = [];
        if (document.documentElement.scrollWidth > window.innerWidth + 1) {
          issues.push(`scrolls sideways: ${document.documentElement.scrollWidth}px`);
        }
        for (const el of document.querySelectorAll('button, a[href], input, select, textarea')) {
          const box = el.getBoundingClientRect();
          if (box.width === 0 || el.closest('[hidden]')) continue;
          if (box.height < 44 && !(el instanceof HTMLInputElement && el.type === 'checkbox')) {
            issues.push(`${el.tagName} "${(el.textContent || el.getAttribute('aria-label') || '').trim()}" is ${box.height}px high`);
          }
          if (el.matches('input, select, textarea')) {
            const labelled =
              el.getAttribute('aria-label') || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label');
            if (!labelled) issues.push(`${el.tagName}#${el.id} has no label`);
          }
        }
        return issues;
      });
      problems.push(...found.map((f) => `${name}: ${f}`));
      await screenshot(page, `screen-${name}`);
    };
    await check('sign-in');
    await signIn(page, PERSONAS.hoa, 'Máy kiểm tra');
    for (const [name, hash] of [
      ['courses', '#/courses'],
      ['course', `#/course/${demo.course.id}`],
      ['roll', `#/session/${demo.sessions[0].id}`],
      ['sync', '#/sync'],
      ['materials', '#/materials'],
      ['settings', '#/settings'],
    ]) {
      await page.goto(`${BASE}/app/${hash}`);
      await page.waitForSelector('main section');
      await check(name);
    }
    // A sync the server turns away is told in the app's language, not in the server's English.
    const pulls = '**/api/v1/sync/pull**';
    await context.route(pulls, (route) =>
      route.fulfill({
        status: 503,
        headers: { 'Retry-After': '1' },
        contentType: 'application/json',
        body: JSON.stringify({ code: 'service_unavailable', message: 'the service is temporarily unavailable: busy' }),
      }),
    );
    await page.goto(`${BASE}/app/#/sync`);
    await page.click('[data-testid=sync-now]');
    const said = await page.waitForFunction(() =>
      [...document.querySelectorAll('main p.error')].map((p) => p.textContent).find((text) => text?.startsWith('Đồng bộ chưa xong')),
    );
    assert.equal(await said.jsonValue(), 'Đồng bộ chưa xong: Máy chủ đang bận; vui lòng thử lại sau ít phút.');
    await context.unroute(pulls);
    await page.goto(`${BASE}/app/#/session/${demo.sessions[0].id}`);
    await page.click('button:has-text("Thêm học viên")');
    await check('add-trainee');
    await page.keyboard.press('Escape');
    await page.goto(`${BASE}/app/#/settings`);
    await page.selectOption('#language', 'en');
    await page.goto(`${BASE}/app/#/session/${demo.sessions[0].id}`);
    await page.waitForSelector('[data-testid=roll] li.row');
    assert.match(await page.textContent('[data-testid=roll-counts]'), /Present \d+ \/ \d+/);
    await check('roll-english');
    assert.deepEqual(problems, []);
    await context.close();
  });
});

/** A course of its own with a trainer who is about to lose it. */
async function unassignFixture() {
  const tag = crypto.randomBytes(3).toString('hex');
  const password = `field-trainer-${tag}-pw`;
  const user = await admin.post('/api/v1/users', { username: `gv.tam.${tag}`, role: 'trainer', password });
  const course = await admin.post('/api/v1/courses', {
    code: `FA-${tag}`,
    title: `Lớp tạm ${tag}`,
    management_level: 'province',
    start_date: '2026-12-01',
    end_date: '2026-12-02',
  });
  const session = await admin.post('/api/v1/sessions', {
    course_id: course.id,
    topic: 'Buổi duy nhất',
    starts_at: '2026-12-01T01:00:00Z',
    ends_at: '2026-12-01T04:00:00Z',
  });
  const people = [];
  for (const name of ['Rơ Mah Hlim', 'Ksor Nay Blơ', 'Đinh Văn Hmưn']) {
    const person = await admin.post('/api/v1/people', { full_name: name, position: 'secretary' });
    await admin.post('/api/v1/enrollments', { course_id: course.id, person_id: person.id });
    people.push(person.id);
  }
  const assignment = await admin.post('/api/v1/course-trainers', { course_id: course.id, user_id: user.id });
  const names = ['Rơ Mah Hlim', 'Ksor Nay Blơ', 'Đinh Văn Hmưn'];
  return { trainer: { username: user.username, password }, course, session, people, names, assignment };
}

/**
 * Runs in the page: the SHA-256 of a material kept in IndexedDB, reassembled from its chunks.
 * @param {string} materialId
 */
async function keptFileSha256(materialId) {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open('diemdanh-field');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const chunks = await new Promise((resolve, reject) => {
    const request = db
      .transaction('chunks')
      .objectStore('chunks')
      .getAll(IDBKeyRange.bound([materialId, 0], [materialId, Number.MAX_SAFE_INTEGER]));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  chunks.sort((a, b) => a.i - b.i);
  const buffer = await new Blob(chunks.map((c) => c.data)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A video for Chromium's fake camera (Y4M, 640×480): a QR code holding `text`, in the middle
 * of a white frame, repeated.
 * @param {string} file
 * @param {string} text
 */
function writeBadgeVideo(file, text) {
  const width = 640;
  const height = 480;
  const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const size = qr.modules.size;
  const scale = Math.floor(360 / (size + 8));
  const side = (size + 8) * scale;
  const left = Math.floor((width - side) / 2);
  const top = Math.floor((height - side) / 2);
  const luma = Buffer.alloc(width * height, 235);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      if (!qr.modules.get(row, col)) continue;
      for (let y = 0; y < scale; y++) {
        const offset = (top + (row + 4) * scale + y) * width + left + (col + 4) * scale;
        luma.fill(16, offset, offset + scale);
      }
    }
  }
  const chroma = Buffer.alloc((width / 2) * (height / 2), 128);
  const frame = Buffer.concat([Buffer.from('FRAME\n'), luma, chroma, chroma]);
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\n`);
  fs.writeFileSync(file, Buffer.concat([header, ...Array(10).fill(frame)]));
}
