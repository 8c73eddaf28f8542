// How long a view waits before its next refresh. Pure: no DOM.
//
// The console serves about 100 requests/s under Bochs and 32 connections at most
// (web/README.md), and lab scripts share it, so a tab stays modest and adapts:
// - a round of requests is followed by a pause of at least `baseMs`, and at least `loadFactor`
//   times what the round took: when the console is slow (busy with a bench, or Bochs), the tab
//   backs off and keeps its share of the console's time under 1 / (1 + loadFactor);
// - failures back off exponentially up to `maxMs`, and never sooner than a Retry-After;
// - a hidden tab does not poll at all (main.mjs waits for visibilitychange);
// - while other clients (a lab script, a benchmark) keep the console busy, the overview waits
//   BUSY_POLICY.delayMs between rounds (othersRate()), so a tab left open does not add to their
//   latency.
export const DEFAULT_POLICY = { baseMs: 2000, loadFactor: 10, maxMs: 30000 };

export function nextDelay({ elapsedMs = 0, failures = 0, retryAfterS = 0 }, policy = DEFAULT_POLICY) {
  const { baseMs, loadFactor, maxMs } = { ...DEFAULT_POLICY, ...policy };
  let delay = Math.max(baseMs, loadFactor * elapsedMs);
  if (failures > 0) delay = Math.max(delay, baseMs * 2 ** Math.min(failures, 10));
  delay = Math.min(delay, maxMs);
  return Math.max(delay, retryAfterS * 1000);
}

// Other clients are "busy" at this many requests per second, and a busy console gets a round
// every `delayMs`.
export const BUSY_POLICY = { othersPerSecond: 5, delayMs: 30000 };

// Requests per second from other clients between two readings, each
// { consoleRequests: /system console.requests, ownRequests: this tab's requests sent, atMs };
// 0 without a previous reading or when no time passed.
export function othersRate(previous, now) {
  if (!previous) return 0;
  const seconds = (now.atMs - previous.atMs) / 1000;
  if (!(seconds > 0)) return 0;
  const others = (now.consoleRequests - previous.consoleRequests) - (now.ownRequests - previous.ownRequests);
  return Math.max(0, others) / seconds;
}
