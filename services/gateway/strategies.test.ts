import { describe, expect, it } from 'vitest';
import { errors, type LabError } from '../lib/errors.ts';
import type { BackendName } from '../topology.ts';
import type { BackendBody } from './backend-api.ts';
import type { DependencyCaller, Fetched } from './dependency-caller.ts';
import { STRATEGY_ASSEMBLERS } from './strategies.ts';

const BODIES: BackendBody = {
  archive: {
    aid: 7,
    bvid: 'BV1xx411c7m9',
    title: 't',
    description: 'd',
    duration: 60,
    ownerMid: 3,
    pubdate: '2020-01-01T00:00:00.000Z',
    category: 'cars',
    cover: 'c',
    views: 1,
  },
  account: { mid: 3, name: 'n', face: 'f', level: 4 },
  vip: { mid: 3, type: 'annual', active: true, dueDate: '2027-01-01' },
  like: { aid: 7, likes: 11 },
  coin: { aid: 7, coins: 5 },
};

/** A caller whose answers the test releases one by one, recording the order calls start in. */
class ScriptedCaller implements DependencyCaller {
  readonly started: BackendName[] = [];
  readonly #pending = new Map<BackendName, (f: Fetched<unknown>) => void>();

  fetch<D extends BackendName>(dependency: D): Promise<Fetched<BackendBody[D]>> {
    this.started.push(dependency);
    return new Promise((resolve) => {
      this.#pending.set(dependency, resolve as (f: Fetched<unknown>) => void);
    });
  }

  answer(dependency: BackendName, stale = false): void {
    this.#release(dependency, { ok: true, value: BODIES[dependency], stale });
  }

  failWith(dependency: BackendName, error: LabError): void {
    this.#release(dependency, { ok: false, error });
  }

  #release(dependency: BackendName, fetched: Fetched<unknown>): void {
    const resolve = this.#pending.get(dependency);
    if (!resolve) throw new Error(`${dependency} was not called (yet)`);
    this.#pending.delete(dependency);
    resolve(fetched);
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const ctx = { requestId: 'r' };
const unavailable = errors.unavailable('DEPENDENCY_UNAVAILABLE', 'down');

describe('naive', () => {
  it('calls one dependency after another, in page order', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.naive(7, caller, ctx);
    for (const dependency of ['archive', 'account', 'vip', 'like', 'coin'] as const) {
      await tick();
      expect(caller.started.at(-1)).toBe(dependency);
      caller.answer(dependency);
    }
    const result = await page;
    expect(result.ok && result.value).toMatchObject({
      aid: 7,
      owner: { mid: 3, vip: { type: 'annual' } },
      stats: { likes: 11, coins: 5 },
      degraded: [],
      strategy: 'naive',
    });
  });

  it('stops at the first failure', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.naive(7, caller, ctx);
    await tick();
    caller.answer('archive');
    await tick();
    caller.failWith('account', unavailable);
    expect(await page).toEqual({ ok: false, error: unavailable });
    expect(caller.started).toEqual(['archive', 'account']);
  });
});

describe('parallel', () => {
  it('starts archive, like and coin at once, the uploader parts when the archive answers', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.parallel(7, caller, ctx);
    await tick();
    expect(caller.started).toEqual(['archive', 'like', 'coin']);
    caller.answer('archive');
    await tick();
    expect(caller.started.slice(3)).toEqual(['account', 'vip']);
    for (const d of ['account', 'vip', 'like', 'coin'] as const) caller.answer(d);
    const result = await page;
    expect(result.ok && result.value.strategy).toBe('parallel');
  });

  it('fails the page as soon as any dependency fails, without waiting for the rest', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.parallel(7, caller, ctx);
    await tick();
    caller.failWith('coin', unavailable);
    expect(await page).toEqual({ ok: false, error: unavailable });
  });

  it('reads a 404 from a video-keyed backend as the video not existing', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.parallel(7, caller, ctx);
    await tick();
    caller.failWith('like', errors.notFound('LIKE_NOT_FOUND', 'no likes'));
    const result = await page;
    expect(!result.ok && [result.error.status, result.error.reason]).toEqual([404, 'VIDEO_NOT_FOUND']);
  });
});

describe('resilient', () => {
  it('falls back on weak dependencies and names them in degraded, sorted', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.resilient(7, caller, ctx);
    await tick();
    caller.failWith('coin', errors.timeout('DEPENDENCY_TIMEOUT', 'slow'));
    caller.answer('archive');
    await tick();
    caller.answer('account');
    caller.failWith('vip', unavailable);
    caller.answer('like', true);
    const result = await page;
    expect(result.ok && result.value).toMatchObject({
      owner: { mid: 3, vip: null },
      stats: { likes: 11, coins: null },
      degraded: ['coin', 'vip'],
      stale: ['like'],
      strategy: 'resilient',
    });
  });

  it('fails fast on a strong dependency without waiting for the weak ones', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.resilient(7, caller, ctx);
    await tick();
    caller.answer('archive');
    await tick();
    const timeout = errors.timeout('DEPENDENCY_TIMEOUT', 'account too slow');
    caller.failWith('account', timeout);
    // vip, like and coin are never answered: the page must not wait for them.
    expect(await page).toEqual({ ok: false, error: timeout });
  });

  it('answers 404 when the archive does not know the video', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.resilient(7, caller, ctx);
    await tick();
    caller.failWith('archive', errors.notFound('VIDEO_NOT_FOUND', 'no video'));
    const result = await page;
    expect(!result.ok && [result.error.status, result.error.reason]).toEqual([404, 'VIDEO_NOT_FOUND']);
  });

  it('calls an uploader the account does not know a dependency failure, not a 404', async () => {
    const caller = new ScriptedCaller();
    const page = STRATEGY_ASSEMBLERS.resilient(7, caller, ctx);
    await tick();
    caller.answer('archive');
    await tick();
    caller.failWith('account', errors.notFound('ACCOUNT_NOT_FOUND', 'no account 3'));
    const result = await page;
    expect(
      !result.ok && [result.error.status, result.error.reason, result.error.metadata.dependency],
    ).toEqual([502, 'DEPENDENCY_FAILED', 'account']);
  });
});
