import { type BackendName, backend, type Strategy } from '../topology.ts';
import type { BackendBody } from './backend-api.ts';
import type { CallContext, DependencyCaller, Fetched } from './dependency-caller.ts';
import { composePage, pageError, type VideoPage } from './page.ts';
import { fail, ok, type Result } from './result.ts';

/**
 * Three ways to assemble the same page, so one fault can be watched hitting each:
 * - naive: one dependency after another, like a client stitching resource APIs together;
 * - parallel: everything at once (the uploader's parts as soon as the archive names them),
 *   but any failure fails the page;
 * - resilient: the same fan-out, where strong dependencies fail the page fast and weak ones
 *   fall back to nothing and are named in `degraded` (the caller's policies add deadlines,
 *   retries, the breaker and the cache).
 */
export type AssemblePage = (
  aid: number,
  caller: DependencyCaller,
  ctx: CallContext,
) => Promise<Result<VideoPage>>;

async function get<D extends BackendName>(
  caller: DependencyCaller,
  dependency: D,
  id: number,
  aid: number,
  ctx: CallContext,
): Promise<Result<BackendBody[D]>> {
  const fetched = await caller.fetch(dependency, id, ctx);
  return fetched.ok ? ok(fetched.value) : fail(pageError(dependency, fetched.error, aid));
}

const naive: AssemblePage = async (aid, caller, ctx) => {
  const archive = await get(caller, 'archive', aid, aid, ctx);
  if (!archive.ok) return archive;
  const mid = archive.value.ownerMid;
  const account = await get(caller, 'account', mid, aid, ctx);
  if (!account.ok) return account;
  const vip = await get(caller, 'vip', mid, aid, ctx);
  if (!vip.ok) return vip;
  const like = await get(caller, 'like', aid, aid, ctx);
  if (!like.ok) return like;
  const coin = await get(caller, 'coin', aid, aid, ctx);
  if (!coin.ok) return coin;
  return ok(
    composePage(
      { archive: archive.value, account: account.value, vip: vip.value, like: like.value, coin: coin.value },
      { strategy: 'naive' },
    ),
  );
};

const parallel: AssemblePage = async (aid, caller, ctx) => {
  const archive = get(caller, 'archive', aid, aid, ctx);
  const owner = archive.then(
    async (a): Promise<[Result<BackendBody['account']>, Result<BackendBody['vip']>]> => {
      if (!a.ok) return [a, a];
      const mid = a.value.ownerMid;
      return Promise.all([get(caller, 'account', mid, aid, ctx), get(caller, 'vip', mid, aid, ctx)]);
    },
  );
  const account = owner.then(([acc]) => acc);
  const vip = owner.then(([, v]) => v);
  const parts = await allOrFirstFailure([
    archive,
    account,
    vip,
    get(caller, 'like', aid, aid, ctx),
    get(caller, 'coin', aid, aid, ctx),
  ] as const);
  if (!parts.ok) return parts;
  const [a, acc, v, like, coin] = parts.value;
  return ok(composePage({ archive: a, account: acc, vip: v, like, coin }, { strategy: 'parallel' }));
};

const resilient: AssemblePage = async (aid, caller, ctx) => {
  const archiveCall = caller.fetch('archive', aid, ctx);
  const likeCall = caller.fetch('like', aid, ctx);
  const coinCall = caller.fetch('coin', aid, ctx);
  // Strong dependencies fail the page at once; the weak calls still running end by their
  // own deadlines, nobody waits for them.
  const archive = await archiveCall;
  if (!archive.ok) return fail(pageError('archive', archive.error, aid));
  const mid = archive.value.ownerMid;
  const accountCall = caller.fetch('account', mid, ctx);
  const vipCall = caller.fetch('vip', mid, ctx);
  const account = await accountCall;
  if (!account.ok) return fail(pageError('account', account.error, aid));
  const [vip, like, coin] = await Promise.all([vipCall, likeCall, coinCall]);

  const degraded: BackendName[] = [];
  const stale: BackendName[] = [];
  const use = <T>(dependency: BackendName, fetched: Fetched<T>): T | null => {
    if (!fetched.ok) {
      // Only weak dependencies reach here with an error: strong ones returned above.
      if (backend(dependency).dependency === 'weak') degraded.push(dependency);
      return null;
    }
    if (fetched.stale) stale.push(dependency);
    return fetched.value;
  };
  const parts = {
    archive: use('archive', archive) as BackendBody['archive'],
    account: use('account', account) as BackendBody['account'],
    vip: use('vip', vip),
    like: use('like', like),
    coin: use('coin', coin),
  };
  return ok(composePage(parts, { strategy: 'resilient', degraded, stale }));
};

export const STRATEGY_ASSEMBLERS: Readonly<Record<Strategy, AssemblePage>> = { naive, parallel, resilient };

type Values<T extends readonly Promise<Result<unknown>>[]> = {
  -readonly [K in keyof T]: Awaited<T[K]> extends Result<infer V> ? V : never;
};

/** Every value, or the first failure as soon as it happens (Promise.all over Results). */
export function allOrFirstFailure<const T extends readonly Promise<Result<unknown>>[]>(
  promises: T,
): Promise<Result<Values<T>>> {
  return new Promise((resolve) => {
    const values: unknown[] = new Array(promises.length);
    let pending = promises.length;
    if (pending === 0) resolve(ok([] as unknown as Values<T>));
    promises.forEach((promise, index) => {
      promise.then((result) => {
        if (!result.ok) {
          resolve(result);
          return;
        }
        values[index] = result.value;
        pending -= 1;
        if (pending === 0) resolve(ok(values as Values<T>));
      });
    });
  });
}
