import { performance } from 'node:perf_hooks';
import type { DependencyCache } from '../cache.ts';
import type { DependencyPolicy } from '../dependency-caller.ts';
import type { PolicyEvents } from './events.ts';

/**
 * The local (second-level) cache around a call: a fresh answer saves the call; a live answer
 * is kept; when the call fails, an older answer is served marked `stale` rather than none.
 * A 404 is an answer, not a failure: it is never papered over with a cached body.
 */
export function serveFromCache(
  cache: DependencyCache<object>,
  events: PolicyEvents,
  now: () => number = () => performance.now(),
): DependencyPolicy {
  return (next) => async (call) => {
    const startedAt = now();
    const key = String(call.id);
    const before = cache.get(key);
    if (before.kind === 'fresh') {
      events.emit({ type: 'cache-hit', dependency: call.dependency, seconds: (now() - startedAt) / 1000 });
      return { ok: true, value: before.value, stale: false };
    }
    const answer = await next(call);
    if (answer.ok) {
      cache.set(key, answer.value);
      return answer;
    }
    if (answer.error.status === 404) return answer;
    // Looked up again: another page may have refreshed it while this call was failing.
    const after = cache.get(key);
    if (after.kind === 'miss') return answer;
    if (after.kind === 'stale') {
      events.emit({ type: 'cache-stale-served', dependency: call.dependency, ageMs: after.ageMs });
    }
    return { ok: true, value: after.value, stale: after.kind === 'stale' };
  };
}
