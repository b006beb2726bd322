import { describe, expect, it } from 'vitest';
import { DATASET } from '../topology.ts';
import { aidToBvid } from './bvid.ts';
import { CATEGORIES, dataset, findAccount, findVideo, findVip } from './dataset.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('dataset', () => {
  const data = dataset();

  it('has the sizes the topology promises, ids 1..N in order', () => {
    expect(data.accounts).toHaveLength(DATASET.accounts);
    expect(data.vips).toHaveLength(DATASET.accounts);
    expect(data.videos).toHaveLength(DATASET.videos);
    expect(data.accounts.map((a) => a.mid)).toEqual(ids(DATASET.accounts));
    expect(data.vips.map((v) => v.mid)).toEqual(ids(DATASET.accounts));
    expect(data.videos.map((v) => v.aid)).toEqual(ids(DATASET.videos));
  });

  it('is generated once per process', () => {
    expect(dataset()).toBe(data);
  });

  it('is the same on every run (seeded): a few fixed points', () => {
    expect(findVideo(2)).toMatchObject({
      aid: 2,
      bvid: 'BV1xx411c7mD',
      title: '【Vlog】Intellect bid knit rawhide holster simplistic easy',
      duration: 3415,
      ownerMid: 1,
      pubdate: '2018-09-28T23:19:25.368Z',
      category: 'tech',
      views: 32766,
    });
    expect(findAccount(1)).toMatchObject({ name: 'Laverne.Wilderman', level: 4 });
    expect(findVip(2)).toEqual({ mid: 2, type: 'monthly', active: true, dueDate: '2026-09-13' });
  });

  it('gives every video a real owner and realistic fields', () => {
    const bvids = new Set<string>();
    for (const v of data.videos) {
      expect(findAccount(v.ownerMid)?.mid).toBe(v.ownerMid);
      expect(v.bvid).toBe(aidToBvid(v.aid));
      bvids.add(v.bvid);
      expect(v.duration).toBeGreaterThanOrEqual(30);
      expect(v.duration).toBeLessThanOrEqual(7_200);
      expect(CATEGORIES).toContain(v.category);
      expect(new Date(v.pubdate).toISOString()).toBe(v.pubdate);
      expect(v.cover).toMatch(/^https:\/\/i0\.hdslb\.com\/bfs\/archive\/[0-9a-f]{40}\.jpg$/);
      expect(v.title.length).toBeGreaterThan(0);
      expect(v.views).toBeGreaterThanOrEqual(100);
      expect(v.likes).toBeLessThanOrEqual(v.views);
      expect(v.coins).toBeLessThanOrEqual(v.views);
    }
    expect(bvids.size).toBe(data.videos.length);
    // Some uploaders have many videos, most have few.
    const perOwner = new Map<number, number>();
    for (const v of data.videos) perOwner.set(v.ownerMid, (perOwner.get(v.ownerMid) ?? 0) + 1);
    expect(Math.max(...perOwner.values())).toBeGreaterThan(10);
  });

  it('gives accounts and VIPs consistent fields', () => {
    for (const a of data.accounts) {
      expect(a.level).toBeGreaterThanOrEqual(0);
      expect(a.level).toBeLessThanOrEqual(6);
      expect(a.face).toMatch(/^https:\/\/i0\.hdslb\.com\/bfs\/face\/[0-9a-f]{40}\.jpg$/);
      expect(a.name.length).toBeGreaterThan(0);
    }
    const types = new Set(data.vips.map((v) => v.type));
    expect([...types].sort()).toEqual(['annual', 'monthly', 'none']);
    for (const v of data.vips) {
      if (v.type === 'none') expect(v).toMatchObject({ active: false, dueDate: null });
      else expect(v.dueDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('finds nothing outside the ids', () => {
    expect(findVideo(0)).toBeUndefined();
    expect(findVideo(DATASET.videos + 1)).toBeUndefined();
    expect(findAccount(DATASET.accounts + 1)).toBeUndefined();
    expect(findVip(0)).toBeUndefined();
  });
});
