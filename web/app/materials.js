// Lecture materials kept on the device: downloaded in chunks into IndexedDB with a progress
// bar, resumed by Range (If-Range: the file's ETag, so that a new version starts over) after a
// cut connection, opened offline as an object URL, deleted to free space.

import { ApiError, OfflineError } from '/shared/api.js';
import { done, transaction } from './store.js';

/**
 * @typedef {{material_id: string, etag: string|null, size: number, received: number,
 *   chunks: number, file_name: string, content_type: string, complete: boolean,
 *   saved_at: number}} KeptFile
 */

/** Bytes gathered before a chunk is written. */
const CHUNK_BYTES = 512 * 1024;

export class Materials {
  /** @param {import('/shared/api.js').Api} api */
  constructor(api) {
    this.api = api;
    /** @type {Map<string, KeptFile>} */
    this.files = new Map();
    /** @type {Map<string, {received: number, size: number}>} */
    this.active = new Map();
    /** @type {Set<() => void>} */
    this.listeners = new Set();
  }

  async load() {
    const files = await transaction(['files'], 'readonly', (tx) => done(tx.objectStore('files').getAll()));
    this.files = new Map(files.map((/** @type {KeptFile} */ f) => [f.material_id, f]));
    this.changed();
  }

  changed() {
    for (const listener of this.listeners) listener();
  }

  /** Bytes the kept files take. */
  bytesKept() {
    let total = 0;
    for (const file of this.files.values()) total += file.received;
    return total;
  }

  /**
   * Downloads (or resumes) a material's file.
   * @param {any} material the Material record
   */
  async download(material) {
    if (this.active.has(material.id)) return;
    let kept = this.files.get(material.id);
    const etag = material.sha256 ? `"${material.sha256}"` : null;
    if (kept && (kept.complete || kept.etag !== etag)) {
      if (kept.complete && kept.etag === etag) return;
      await this.remove(material.id);
      kept = undefined;
    }
    /** @type {KeptFile} */
    const file = kept || {
      material_id: material.id,
      etag,
      size: material.size_bytes || 0,
      received: 0,
      chunks: 0,
      file_name: material.file_name || material.title,
      content_type: material.content_type || 'application/octet-stream',
      complete: false,
      saved_at: Date.now(),
    };
    this.active.set(material.id, { received: file.received, size: file.size });
    this.changed();
    try {
      /** @type {Record<string, string>} */
      const headers = {};
      if (file.received > 0) {
        headers.Range = `bytes=${file.received}-`;
        if (etag) headers['If-Range'] = etag;
      }
      const response = /** @type {Response} */ (
        await this.api.request('GET', `/api/v1/materials/${material.id}/content`, {
          headers,
          response: true,
        })
      );
      if (response.status === 200 && file.received > 0) {
        // The server sent the whole file (another version): start over.
        await this.clearChunks(material.id);
        file.received = 0;
        file.chunks = 0;
      }
      const length = Number(response.headers.get('Content-Length') || 0);
      if (response.status === 200 && length) file.size = length;
      const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
      /** @type {Uint8Array[]} */
      let pending = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        const blob = new Blob(/** @type {BlobPart[]} */ (pending));
        const index = file.chunks;
        file.chunks += 1;
        file.received += pendingBytes;
        pending = [];
        pendingBytes = 0;
        await transaction(['chunks', 'files'], 'readwrite', (tx) => {
          tx.objectStore('chunks').put({ m: file.material_id, i: index, data: blob });
          tx.objectStore('files').put(file);
        });
        this.files.set(file.material_id, { ...file });
      };
      try {
        for (;;) {
          const { done: finished, value } = await reader.read();
          if (finished) break;
          pending.push(value);
          pendingBytes += value.length;
          this.active.set(material.id, { received: file.received + pendingBytes, size: file.size });
          this.changed();
          if (pendingBytes >= CHUNK_BYTES) await flush();
        }
      } finally {
        // What arrived before a cut is kept: the next attempt asks for the rest.
        await flush();
      }
      file.complete = file.size === 0 || file.received >= file.size;
      await transaction(['files'], 'readwrite', (tx) => tx.objectStore('files').put(file));
      this.files.set(file.material_id, { ...file });
    } catch (e) {
      if (e instanceof ApiError || e instanceof OfflineError) throw e;
      throw new OfflineError();
    } finally {
      this.active.delete(material.id);
      this.changed();
    }
  }

  /**
   * The kept file as a Blob, offline.
   * @param {string} materialId
   */
  async blob(materialId) {
    const file = this.files.get(materialId);
    if (!file || !file.complete) return null;
    const chunks = await transaction(['chunks'], 'readonly', (tx) =>
      done(
        tx
          .objectStore('chunks')
          .getAll(IDBKeyRange.bound([materialId, 0], [materialId, Number.MAX_SAFE_INTEGER])),
      ),
    );
    chunks.sort((/** @type {any} */ a, /** @type {any} */ b) => a.i - b.i);
    return new Blob(
      chunks.map((/** @type {any} */ c) => c.data),
      { type: file.content_type },
    );
  }

  /** @param {string} materialId */
  async clearChunks(materialId) {
    await transaction(['chunks'], 'readwrite', (tx) =>
      tx
        .objectStore('chunks')
        .delete(IDBKeyRange.bound([materialId, 0], [materialId, Number.MAX_SAFE_INTEGER])),
    );
  }

  /** @param {string} materialId */
  async remove(materialId) {
    await transaction(['chunks', 'files'], 'readwrite', (tx) => {
      tx
        .objectStore('chunks')
        .delete(IDBKeyRange.bound([materialId, 0], [materialId, Number.MAX_SAFE_INTEGER]));
      tx.objectStore('files').delete(materialId);
    });
    this.files.delete(materialId);
    this.changed();
  }
}
