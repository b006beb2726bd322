import { describe, expect, it } from 'vitest';
import { aidToBvid, bvidToAid, MAX_AID } from './bvid.ts';

describe('bvid', () => {
  it('matches the pairs Bilibili published', () => {
    expect(aidToBvid(2)).toBe('BV1xx411c7mD');
    expect(aidToBvid(170001)).toBe('BV17x411w7KC');
    expect(bvidToAid('BV1xx411c7mD')).toBe(2);
    expect(bvidToAid('BV17x411w7KC')).toBe(170001);
  });

  it('round-trips and never repeats over the lab’s ids and beyond', () => {
    const seen = new Set<string>();
    for (let aid = 1; aid <= 5_000; aid++) {
      const bvid = aidToBvid(aid);
      expect(bvid).toMatch(/^BV1[1-9A-HJ-NP-Za-km-z]{9}$/);
      expect(bvidToAid(bvid)).toBe(aid);
      seen.add(bvid);
    }
    expect(seen.size).toBe(5_000);
    expect(bvidToAid(aidToBvid(MAX_AID - 1))).toBe(MAX_AID - 1);
  });

  it('refuses what is not an aid or a bvid', () => {
    for (const aid of [0, -1, 1.5, MAX_AID, Number.NaN]) expect(() => aidToBvid(aid)).toThrow(RangeError);
    for (const bvid of ['', 'BV1xx411c7m', 'BV1xx411c7mDD', 'av170001', 'BV1xx411c7m0', 'BV0xx411c7mD']) {
      expect(bvidToAid(bvid)).toBeUndefined();
    }
  });
});
