// The page's API client against a fake fetch: bearer token from session storage, one request at
// a time, the API's error shape, the 401 hook that brings up the token prompt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient } from '../js/api.mjs';

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

function jsonResponse(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

test('sends the stored token as a Bearer header, none without one', async () => {
  const seen = [];
  const client = new ApiClient({ storage: new MemoryStorage(), fetchImpl: async (url, init) => {
    seen.push([url, init.headers.Authorization]);
    return jsonResponse(200, { ok: true });
  } });
  await client.get('/system');
  client.token = 's3cret';
  await client.get('/vcpus');
  assert.deepEqual(seen, [['/api/v1/system', undefined], ['/api/v1/vcpus', 'Bearer s3cret']]);
  client.token = '';
  assert.equal(client.token, '');
});

test('requests never overlap: the next starts when the previous has answered', async () => {
  let inFlight = 0;
  let most = 0;
  const client = new ApiClient({ storage: new MemoryStorage(), fetchImpl: async () => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight -= 1;
    return jsonResponse(200, {});
  } });
  await Promise.all([client.get('/a'), client.get('/b'), client.post('/c', { x: 1 }), client.get('/d')]);
  assert.equal(most, 1);
});

test('errors carry the API code, message and Retry-After; a 401 calls the prompt hook', async () => {
  const answers = [
    jsonResponse(429, { error: { code: 'event_queue_full', message: 'full' } }, { 'retry-after': '1' }),
    jsonResponse(401, { error: { code: 'unauthorized', message: 'the bearer token is not valid for this console' } }),
    new Response('not json', { status: 502 }),
  ];
  const client = new ApiClient({ storage: new MemoryStorage(), fetchImpl: async () => answers.shift() });
  const prompted = [];
  client.onUnauthorized = (e) => prompted.push(e.code);
  await assert.rejects(client.post('/vms/0/vcpus/0/events', { type: 'nmi', vector: 2 }),
    { status: 429, code: 'event_queue_full', message: 'full', retryAfterS: 1 });
  await assert.rejects(client.get('/system'), { status: 401, code: 'unauthorized' });
  assert.deepEqual(prompted, ['unauthorized']);
  await assert.rejects(client.get('/system'), { status: 502, code: 'http_502' });
});

test('a POST sends JSON with its media type, raw input with the one given', async () => {
  const seen = [];
  const client = new ApiClient({ storage: new MemoryStorage(), fetchImpl: async (url, init) => {
    seen.push([init.method, init.headers['Content-Type'], init.body]);
    return jsonResponse(202, {});
  } });
  await client.post('/vms/0/vcpus/0/events', { type: 'interrupt', vector: 48 });
  await client.postRaw('/vms/0/console', 'ls\n', 'application/octet-stream');
  assert.deepEqual(seen, [
    ['POST', 'application/json', '{"type":"interrupt","vector":48}'],
    ['POST', 'application/octet-stream', 'ls\n'],
  ]);
});

test('an unreachable console is an ApiError with status 0', async () => {
  const client = new ApiClient({ storage: new MemoryStorage(), fetchImpl: async () => { throw new TypeError('fetch failed'); } });
  await assert.rejects(client.get('/system'), { status: 0, code: 'unreachable' });
});
