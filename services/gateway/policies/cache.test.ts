import { describe, expect, it } from 'vitest';
import { DependencyCache } from '../cache.ts';
import type { Fetched } from '../dependency-caller.ts';
import { answers, likeCall, recordedEvents, scripted } from './__fixtures__/calls.ts';
import { serveFromCache } from './cache.ts';

function setup() {
  const clock = { now: 0 };
  const cache = new DependencyCache<object>({ ttlMs: 1_000, maxStaleMs: 60_000, clock: () => clock.now });
  const { events, seen } = recordedEvents();
  return { clock, cache, seen, policy: serveFromCache(cache, events, () => 0) };
}

describe('serveFromCache', () => {
  it('keeps a live answer, and answers from it while fresh without calling', async () => {
    const { policy, seen } = setup();
    const backend = scripted(answers.ok({ likes: 1 }), answers.ok({ likes: 2 }));
    const handle = policy(backend);
    expect(await handle(likeCall())).toEqual({ ok: true, value: { likes: 1 }, stale: false });
    expect(await handle(likeCall())).toEqual({ ok: true, value: { likes: 1 }, stale: false });
    expect(backend.calls).toHaveLength(1);
    expect(seen).toEqual([{ type: 'cache-hit', dependency: 'like', seconds: 0 }]);
  });

  it('keys answers by id: another video is a miss', async () => {
    const { policy } = setup();
    const backend = scripted(answers.ok());
    const handle = policy(backend);
    await handle(likeCall({ id: 1 }));
    await handle(likeCall({ id: 2 }));
    expect(backend.calls.map((c) => c.id)).toEqual([1, 2]);
  });

  it('calls again once the answer is stale, and serves it marked stale when that call fails', async () => {
    const { policy, clock, seen } = setup();
    const backend = scripted(answers.ok({ likes: 1 }), answers.failed());
    const handle = policy(backend);
    await handle(likeCall());
    clock.now = 5_000;
    expect(await handle(likeCall())).toEqual({ ok: true, value: { likes: 1 }, stale: true });
    expect(backend.calls).toHaveLength(2);
    expect(seen).toEqual([{ type: 'cache-stale-served', dependency: 'like', ageMs: 5_000 }]);
  });

  it('passes a failure on when there is nothing to serve', async () => {
    const { policy, seen } = setup();
    const failed = answers.failed();
    expect(await policy(scripted(failed))(likeCall())).toBe(failed);
    expect(seen).toEqual([]);
  });

  it('never answers a 404 with a cached body: the backend said there is no such thing', async () => {
    const { policy, clock } = setup();
    const notFound = answers.notFound();
    const handle = policy(scripted(answers.ok(), notFound));
    await handle(likeCall());
    clock.now = 5_000;
    expect(await handle(likeCall())).toBe(notFound);
  });

  it('serves an answer another page stored while this call was failing, as fresh', async () => {
    const { policy, clock, seen } = setup();
    let failSlowCall: (answer: Fetched<object>) => void = () => {};
    const handle = policy(async (call) =>
      call.requestId === 'slow'
        ? new Promise<Fetched<object>>((resolve) => {
            failSlowCall = resolve;
          })
        : answers.ok({ likes: 9 }),
    );
    clock.now = 100;
    const slow = handle(likeCall({ requestId: 'slow' }));
    await handle(likeCall({ requestId: 'quick' }));
    failSlowCall(answers.failed());
    expect(await slow).toEqual({ ok: true, value: { likes: 9 }, stale: false });
    expect(seen).toEqual([]);
  });
});
