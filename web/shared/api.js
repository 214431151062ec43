// The one client of the public API (/api/v1) for the web apps: sign-in, tokens that refresh
// themselves, JSON errors turned into ApiError with the server's stable code.

/**
 * @typedef {{id: string, username: string, display_name: string,
 *   role: 'admin'|'organiser'|'trainer'|'trainee', person_id: string|null,
 *   unit_id: string|null}} User
 * @typedef {{access_token: string, refresh_token: string, device_id: string, user: User,
 *   expires_at: number}} Session
 */

/** An answer of the server that is not a success: `code` is the stable snake_case code. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {any} [details]
   * @param {number} [retryAfter] seconds the server asks the client to wait (Retry-After)
   */
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** The device can no longer use its tokens: it must sign in again (its data stays). */
  get signedOut() {
    return (
      this.status === 401 &&
      ['device_revoked', 'account_disabled', 'invalid_token', 'missing_token'].includes(this.code)
    ) || (this.status === 403 && this.code === 'account_disabled');
  }
}

/** No answer at all: the network is down or the server unreachable. */
export class OfflineError extends Error {
  constructor() {
    super('offline');
  }
}

export class Api {
  /**
   * @param {{load: () => Promise<Session|null>, save: (s: Session|null) => Promise<void>}} store
   *   where the session (tokens) is kept
   */
  constructor(store) {
    this.store = store;
    /** @type {Session|null} */
    this.session = null;
    /** @type {Promise<void>|null} */
    this.refreshing = null;
  }

  async init() {
    this.session = await this.store.load();
    return this.session;
  }

  /**
   * @param {string} username
   * @param {string} password
   * @param {string} deviceName
   */
  async login(username, password, deviceName) {
    const answer = await this.raw('POST', '/api/v1/auth/login', {
      body: { username, password, device_name: deviceName },
    });
    await this.keep(answer);
    return /** @type {Session} */ (this.session);
  }

  async logout() {
    if (this.session) {
      try {
        await this.request('POST', '/api/v1/auth/logout');
      } catch {
        // Signing out on the device must work offline too; the refresh token then expires.
      }
    }
    this.session = null;
    await this.store.save(null);
  }

  /** @param {any} answer a TokenResponse */
  async keep(answer) {
    this.session = {
      access_token: answer.access_token,
      refresh_token: answer.refresh_token,
      device_id: answer.device_id,
      user: answer.user,
      // Local time only decides when to refresh early; the server judges expiry.
      expires_at: Date.now() + answer.expires_in * 1000,
    };
    await this.store.save(this.session);
  }

  /** One refresh at a time: the refresh token works once. */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        const session = this.session;
        if (!session) throw new ApiError(401, 'missing_token', 'not signed in');
        const answer = await this.raw('POST', '/api/v1/auth/refresh', {
          body: { refresh_token: session.refresh_token },
        });
        await this.keep(answer);
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /**
   * A request with the access token, refreshed first when it is about to expire and once more
   * when the server says it has.
   * @param {string} method
   * @param {string} path
   * @param {{body?: any, query?: Record<string, any>, headers?: Record<string, string>,
   *   signal?: AbortSignal, response?: boolean}} [options]
   */
  async request(method, path, options = {}) {
    if (this.session && this.session.expires_at - Date.now() < 30_000) {
      await this.refresh().catch((e) => {
        if (!(e instanceof OfflineError) && !(e instanceof ApiError && e.status >= 500)) throw e;
      });
    }
    try {
      return await this.raw(method, path, { ...options, token: this.session?.access_token });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && e.code === 'token_expired') {
        await this.refresh();
        return this.raw(method, path, { ...options, token: this.session?.access_token });
      }
      throw e;
    }
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: any, query?: Record<string, any>, headers?: Record<string, string>,
   *   signal?: AbortSignal, response?: boolean, token?: string}} options
   */
  async raw(method, path, options) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(options.query || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json', ...(options.headers || {}) };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    /** @type {RequestInit} */
    const init = { method, headers, signal: options.signal, cache: 'no-store' };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new OfflineError();
    }
    if (response.ok && options.response) return response;
    if (response.ok || response.status === 206) {
      const text = await response.text();
      return text ? JSON.parse(text) : null;
    }
    let error = { code: 'http_' + response.status, message: response.statusText, details: undefined };
    try {
      error = await response.json();
    } catch {
      // Not JSON (a proxy's page): keep the status.
    }
    const retryAfter = Number(response.headers.get('Retry-After')) || undefined;
    throw new ApiError(response.status, error.code, error.message, error.details, retryAfter);
  }
}
