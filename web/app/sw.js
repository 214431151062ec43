// The field app's service worker: keeps every file of the app on the device so that it starts
// and works with no network. The server writes this build's id and its file list (each file
// with its hash) into the text below, so any change to the app changes this worker, and the
// browser installs the new version in the background.
/// <reference lib="webworker" />

const BUILD = '__BUILD__';
/** @type {[string, string][]} */
const ASSETS = JSON.parse('__ASSETS__');
const CACHE = `diemdanh-app-${BUILD}`;

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `?v=<hash>` names one version of a file: the HTTP cache may keep it for a year, and a
      // file unchanged since the last build is not downloaded again.
      await Promise.all(
        ASSETS.map(async ([url, hash]) => {
          const response = await fetch(`${url}?v=${hash}`);
          if (!response.ok) throw new Error(`${url}: ${response.status}`);
          await cache.put(url, response);
        }),
      );
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('diemdanh-app-') && name !== CACHE) await caches.delete(name);
      }
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== location.origin || url.pathname.startsWith('/api/')) {
    return;
  }
  if (request.mode === 'navigate' && url.pathname.startsWith('/app')) {
    event.respondWith(fromCache('/app/', request));
    return;
  }
  if (ASSETS.some(([asset]) => asset === url.pathname)) {
    event.respondWith(fromCache(url.pathname, request));
  }
});

/**
 * The cached file, or the network when it is somehow missing.
 * @param {string} key
 * @param {Request} request
 */
async function fromCache(key, request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(key);
  return cached || fetch(request);
}
