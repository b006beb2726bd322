import { LabError } from '../lib/errors.ts';
import type { BackendName, Strategy } from '../topology.ts';
import type { BackendBody } from './backend-api.ts';

/** The video page: the scenario API the gateway exists for (one call instead of five). */
export interface VideoPage {
  readonly aid: number;
  readonly bvid: string;
  readonly title: string;
  readonly description: string;
  readonly duration: number;
  readonly pubdate: string;
  readonly category: string;
  readonly cover: string;
  readonly views: number;
  readonly owner: {
    readonly mid: number;
    readonly name: string;
    readonly face: string;
    readonly level: number;
    readonly vip: { readonly type: string; readonly active: boolean; readonly dueDate: string | null } | null;
  };
  readonly stats: { readonly likes: number | null; readonly coins: number | null };
  /** Weak dependencies the page was served without. */
  readonly degraded: readonly BackendName[];
  /** Dependencies whose part came from the cache because the live call failed. */
  readonly stale: readonly BackendName[];
  readonly strategy: Strategy;
}

export interface PageParts {
  readonly archive: BackendBody['archive'];
  readonly account: BackendBody['account'];
  readonly vip: BackendBody['vip'] | null;
  readonly like: BackendBody['like'] | null;
  readonly coin: BackendBody['coin'] | null;
}

export function composePage(
  parts: PageParts,
  meta: { strategy: Strategy; degraded?: readonly BackendName[]; stale?: readonly BackendName[] },
): VideoPage {
  const { archive, account, vip, like, coin } = parts;
  return {
    aid: archive.aid,
    bvid: archive.bvid,
    title: archive.title,
    description: archive.description,
    duration: archive.duration,
    pubdate: archive.pubdate,
    category: archive.category,
    cover: archive.cover,
    views: archive.views,
    owner: {
      mid: account.mid,
      name: account.name,
      face: account.face,
      level: account.level,
      vip: vip ? { type: vip.type, active: vip.active, dueDate: vip.dueDate } : null,
    },
    stats: { likes: like?.likes ?? null, coins: coin?.coins ?? null },
    degraded: [...(meta.degraded ?? [])].sort(),
    stale: [...(meta.stale ?? [])].sort(),
    strategy: meta.strategy,
  };
}

/** Backends whose resource is the video itself: their 404 means the video does not exist. */
const KEYED_BY_AID: ReadonlySet<BackendName> = new Set(['archive', 'like', 'coin']);

/**
 * A dependency's failure as the page's failure. Most already say the right thing (503, 504,
 * 502, CIRCUIT_OPEN); a 404 needs reading: about the video it is the page's 404, about the
 * uploader it means two backends disagree, which is a failure of the dependency.
 */
export function pageError(dependency: BackendName, error: LabError, aid: number): LabError {
  if (error.status !== 404) return error;
  if (KEYED_BY_AID.has(dependency)) {
    return new LabError({
      status: 404,
      reason: 'VIDEO_NOT_FOUND',
      message: `video ${aid} does not exist (ids are positive integers known to the archive)`,
      metadata: { aid: String(aid), dependency },
    });
  }
  return new LabError({
    status: 502,
    reason: 'DEPENDENCY_FAILED',
    message: `${dependency} does not know the uploader of video ${aid}: ${error.message}`,
    metadata: { ...error.metadata, dependency },
  });
}
