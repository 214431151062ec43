// The device's durable state, in IndexedDB: what the server sent (records, cursor), what the
// user did and has not sent (the outbox), what the server refused, the clock, the session, the
// rosters kept for adding people offline, and the material files kept offline (in chunks, so
// that a cut download resumes where it stopped).

const NAME = 'diemdanh-field';
const VERSION = 1;

/** @type {Promise<IDBDatabase>|null} */
let opening = null;

/** @returns {Promise<IDBDatabase>} */
export function database() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore('meta');
        db.createObjectStore('records', { keyPath: ['c', 'id'] }).createIndex('c', 'c');
        db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
        db.createObjectStore('refused', { keyPath: 'seq', autoIncrement: true });
        db.createObjectStore('roster', { keyPath: 'course_id' });
        db.createObjectStore('files', { keyPath: 'material_id' });
        db.createObjectStore('chunks', { keyPath: ['m', 'i'] });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error('database blocked by another tab'));
    });
  }
  return opening;
}

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
export function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Runs `work` in one transaction and resolves once it is committed.
 * @template T
 * @param {string[]} stores
 * @param {IDBTransactionMode} mode
 * @param {(tx: IDBTransaction) => T | Promise<T>} work
 * @returns {Promise<T>}
 */
export async function transaction(stores, mode, work) {
  const db = await database();
  const tx = db.transaction(stores, mode, { durability: 'strict' });
  const committed = new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
  const result = await work(tx);
  await committed;
  return result;
}

/**
 * @param {string} key
 * @returns {Promise<any>}
 */
export async function getMeta(key) {
  return transaction(['meta'], 'readonly', (tx) => done(tx.objectStore('meta').get(key)));
}

/**
 * @param {string} key
 * @param {any} value
 */
export async function setMeta(key, value) {
  return transaction(['meta'], 'readwrite', (tx) => {
    if (value === undefined || value === null) tx.objectStore('meta').delete(key);
    else tx.objectStore('meta').put(value, key);
  });
}

/**
 * @param {string} store
 * @returns {Promise<any[]>}
 */
export async function all(store) {
  return transaction([store], 'readonly', (tx) => done(tx.objectStore(store).getAll()));
}

/** Forgets everything the server sent (a resync, or another user signing in). */
export async function clearPulled() {
  return transaction(['records', 'meta', 'roster'], 'readwrite', (tx) => {
    tx.objectStore('records').clear();
    tx.objectStore('roster').clear();
    tx.objectStore('meta').delete('cursor');
  });
}
