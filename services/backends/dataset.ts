import { DATASET } from '../topology.ts';
import { generateDataset } from './dataset-generate.ts';

/**
 * The lab's data: a few hundred uploaders and a thousand-odd videos, the same on every
 * instance and every run because they come from DATASET.seed. Load tests, the gateway's cache
 * and the report can then name an aid and know what it holds.
 */

export interface Account {
  readonly mid: number;
  readonly name: string;
  readonly face: string;
  readonly sign: string;
  /** Bilibili's account level, 0-6. */
  readonly level: number;
}

export const VIP_TYPES = ['none', 'monthly', 'annual'] as const;
export type VipType = (typeof VIP_TYPES)[number];

export interface Vip {
  readonly mid: number;
  readonly type: VipType;
  readonly active: boolean;
  /** ISO date the membership ends; null without one. */
  readonly dueDate: string | null;
}

export const CATEGORIES = [
  'animation',
  'music',
  'dance',
  'gaming',
  'knowledge',
  'tech',
  'sports',
  'cars',
  'life',
  'food',
  'animals',
  'kichiku',
  'fashion',
  'entertainment',
  'film',
  'documentary',
] as const;
export type Category = (typeof CATEGORIES)[number];

export interface Video {
  readonly aid: number;
  readonly bvid: string;
  readonly title: string;
  readonly description: string;
  /** Seconds. */
  readonly duration: number;
  readonly ownerMid: number;
  readonly pubdate: string;
  readonly category: Category;
  readonly cover: string;
  /** Seeded counters; the backends count on from here. */
  readonly views: number;
  readonly likes: number;
  readonly coins: number;
}

export interface Dataset {
  /** accounts[mid - 1] */
  readonly accounts: readonly Account[];
  /** vips[mid - 1] */
  readonly vips: readonly Vip[];
  /** videos[aid - 1] */
  readonly videos: readonly Video[];
}

let memo: Dataset | undefined;

/** Generated on first use and shared by everything in the process (tests included). */
export function dataset(): Dataset {
  if (!memo) {
    const { accounts, vips, videos } = generateDataset();
    memo = Object.freeze({
      accounts: Object.freeze(accounts),
      vips: Object.freeze(vips),
      videos: Object.freeze(videos),
    });
  }
  return memo;
}

export function findAccount(mid: number): Account | undefined {
  return dataset().accounts[mid - DATASET.firstMid];
}

export function findVip(mid: number): Vip | undefined {
  return dataset().vips[mid - DATASET.firstMid];
}

export function findVideo(aid: number): Video | undefined {
  return dataset().videos[aid - DATASET.firstAid];
}
