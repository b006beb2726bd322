import { describe, expect, it } from 'vitest';
import { measureProxyOverhead } from './overhead.ts';

describe('measureProxyOverhead', () => {
  it('measures the same requests directly and through the proxy, and returns sane figures', async () => {
    const figures = await measureProxyOverhead({ requests: 40, warmup: 10 });
    expect(figures.requests).toBe(40);
    for (const side of [figures.direct, figures.proxied]) {
      expect(side.p50Ms).toBeGreaterThan(0);
      expect(side.p99Ms).toBeGreaterThanOrEqual(side.p50Ms);
      expect(side.meanMs).toBeGreaterThan(0);
      expect(side.p99Ms).toBeLessThan(5_000);
    }
    expect(figures.addedMs.p50).toBeCloseTo(figures.proxied.p50Ms - figures.direct.p50Ms, 2);
  });
});
