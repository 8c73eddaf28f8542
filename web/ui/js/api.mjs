// The console's JSON API v1 from the page (docs/api.md): one request at a time per tab, the
// bearer token from sessionStorage, errors as ApiError with the API's code and message.

const TOKEN_KEY = 'lantern.token';

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

// The API's error shape {"error": {"code", "message"}} or, for anything else, a generic one.
export async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch { /* not JSON: keep the status line */ }
  const retryAfterS = Number.parseInt(response.headers.get('retry-after') ?? '0', 10) || 0;
  return new ApiError(response.status, code, message, retryAfterS);
}

export class ApiClient {
  constructor({ storage = globalThis.sessionStorage, fetchImpl = globalThis.fetch.bind(globalThis) } = {}) {
    this.storage = storage;
    this.fetch = fetchImpl;
    this.tail = Promise.resolve();  // requests run one after another: one connection per tab
    this.onUnauthorized = null;      // called with the ApiError of a 401
    this.lastElapsedMs = 0;
    this.sent = 0;  // requests this tab has sent (the overview tells them from other clients')
  }

  get token() { return this.storage?.getItem(TOKEN_KEY) ?? ''; }
  set token(value) {
    if (value) this.storage?.setItem(TOKEN_KEY, value);
    else this.storage?.removeItem(TOKEN_KEY);
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, { json: body }); }
  // Raw bytes (the guest console's input): `text` as is, with its media type.
  postRaw(path, text, type) { return this.request('POST', path, { raw: text, type }); }

  request(method, path, body = {}) {
    const run = () => this.send(method, path, body);
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => {});
    return result;
  }

  async send(method, path, { json, raw, type } = {}) {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init = { method, headers, cache: 'no-store' };
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    } else if (raw !== undefined) {
      headers['Content-Type'] = type;
      init.body = raw;
    }
    const started = performance.now();
    this.sent += 1;
    let response;
    try {
      response = await this.fetch(`/api/v1${path}`, init);
    } catch (e) {
      throw new ApiError(0, 'unreachable', `the console did not answer (${e.message})`);
    } finally {
      this.lastElapsedMs = performance.now() - started;
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (error.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    return response.json();
  }
}
