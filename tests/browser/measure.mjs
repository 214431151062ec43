// Prints what the field app costs a low-end phone: the compressed size of its JavaScript and
// CSS as the server sends them, and the time to render the roll of a session of 200 (median of
// several renders, also with the CPU slowed 4× as on a cheap phone). Figures only: nothing is
// asserted. Run against a server with the demo data:
//   cargo run --release -- serve --demo &
//   (cd tests/browser && npm ci && node measure.mjs)         # DIEMDANH_BASE=http://… to change
import zlib from 'node:zlib';
import { AdminApi, BASE, PERSONAS, launch, phone, signIn } from './support.mjs';

const RENDERS = 7;

async function bundleSizes() {
  const worker = await (await fetch(`${BASE}/app/sw.js`)).text();
  const assets = JSON.parse(worker.split("JSON.parse('")[1].split("')")[0]);
  const sizes = { app: { raw: 0, gzip: 0, br: 0 }, lazy: { raw: 0, gzip: 0, br: 0 }, other: 0 };
  for (const [url] of assets) {
    const body = Buffer.from(await (await fetch(BASE + url)).arrayBuffer());
    if (!/\.(js|css)$/.test(url)) {
      sizes.other += body.length;
      continue;
    }
    // The vendored QR decoder loads only when the browser has no BarcodeDetector.
    const kind = url.startsWith('/vendor/') ? 'lazy' : 'app';
    sizes[kind].raw += body.length;
    sizes[kind].gzip += zlib.gzipSync(body, { level: 6 }).length;
    sizes[kind].br += zlib.brotliCompressSync(body).length;
  }
  return sizes;
}

async function rollOf200(admin) {
  const tag = Date.now().toString(36);
  const course = await admin.post('/api/v1/courses', {
    code: `DO-200-${tag}`,
    title: `Lớp đo 200 ${tag}`,
    management_level: 'province',
    start_date: '2026-12-01',
    end_date: '2026-12-03',
  });
  const session = await admin.post('/api/v1/sessions', {
    course_id: course.id,
    topic: 'Buổi đo',
    starts_at: '2026-12-01T01:00:00Z',
    ends_at: '2026-12-01T04:00:00Z',
  });
  const family = ['Nguyễn', 'Trần', 'Lê', 'Phạm', 'Rơ Mah', 'Ksor', 'Siu', 'Đinh'];
  const given = ['An', 'Bình', 'Cường', 'Dung', 'Hlim', 'Blơ', 'H’Nga', 'Thảo', 'Vy', 'Hùng'];
  for (let i = 0; i < 200; i++) {
    const person = await admin.post('/api/v1/people', {
      full_name: `${family[i % family.length]} Văn ${given[(i * 7) % given.length]} ${i}`,
      position: i % 2 ? 'secretary' : 'deputy_secretary',
    });
    await admin.post('/api/v1/enrollments', { course_id: course.id, person_id: person.id });
    // Most of a roll is marked when a trainer opens it again: marks with times and some notes.
    if (i % 4 !== 0) {
      await admin.post('/api/v1/attendance', {
        session_id: session.id,
        person_id: person.id,
        status: i % 9 === 0 ? 'late' : 'present',
        checked_in_at: '2026-12-01T01:05:00Z',
        note: i % 10 === 0 ? 'Ngồi bàn đầu' : null,
      });
    }
  }
  return { course, session };
}

const admin = new AdminApi();
const sizes = await bundleSizes();
const { session } = await rollOf200(admin);
const browser = await launch();
const { page, context } = await phone(browser);
await signIn(page, PERSONAS.admin, 'Máy đo');
const cdp = await context.newCDPSession(page);
const results = {};
for (const rate of [1, 4]) {
  await cdp.send('Emulation.setCPUThrottlingRate', { rate });
  const times = [];
  for (let i = 0; i < RENDERS; i++) {
    await page.evaluate(() => {
      location.hash = '#/courses';
    });
    await page.waitForSelector('section.list');
    times.push(
      await page.evaluate(async (id) => {
        const start = performance.now();
        location.hash = `#/session/${id}`;
        while (document.querySelectorAll('[data-testid=roll] li.row').length < 200) {
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        await new Promise((resolve) => requestAnimationFrame(() => resolve(undefined)));
        return performance.now() - start;
      }, session.id),
    );
  }
  times.sort((a, b) => a - b);
  results[rate] = { median: times[Math.floor(times.length / 2)], max: times[times.length - 1] };
}
await browser.close();

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log('field app (/app/) on a 360×740 phone, Chromium', BASE);
console.log(`JS+CSS of the app: ${kb(sizes.app.raw)} raw, ${kb(sizes.app.gzip)} gzip, ${kb(sizes.app.br)} brotli (aim: under 150 KB compressed)`);
console.log(`QR decoder, loaded only without BarcodeDetector: ${kb(sizes.lazy.raw)} raw, ${kb(sizes.lazy.gzip)} gzip, ${kb(sizes.lazy.br)} brotli`);
console.log(`other files (HTML, manifest, icons): ${kb(sizes.other)}`);
for (const [rate, r] of Object.entries(results)) {
  console.log(`roll of 200, CPU ${rate}x slower: median ${r.median.toFixed(1)} ms, max ${r.max.toFixed(1)} ms over ${RENDERS} renders (aim: under 100 ms)`);
}
