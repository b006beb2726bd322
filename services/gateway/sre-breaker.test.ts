import { describe, expect, it } from 'vitest';
import { SreBreaker } from './sre-breaker.ts';

function breaker(options: { random?: () => number; minRequests?: number; k?: number } = {}) {
  const clock = { now: 0 };
  const b = new SreBreaker({
    windowMs: 1000,
    buckets: 10,
    minRequests: options.minRequests ?? 10,
    k: options.k ?? 1.5,
    clock: () => clock.now,
    random: options.random ?? (() => 0),
  });
  return { b, clock };
}

describe('SreBreaker (Google SRE adaptive throttling)', () => {
  it('never drops while the backend accepts everything', () => {
    const { b } = breaker();
    for (let i = 0; i < 1000; i++) {
      expect(b.allow()).toBe(true);
      b.markSuccess();
    }
    expect(b.dropProbability()).toBe(0);
    expect(b.state()).toBe('closed');
  });

  it('drops nothing below the minimum request count, however bad', () => {
    const { b } = breaker({ minRequests: 10 });
    for (let i = 0; i < 9; i++) b.markFailure();
    expect(b.dropProbability()).toBe(0);
    expect(b.allow()).toBe(true);
    b.markFailure();
    expect(b.dropProbability()).toBeGreaterThan(0);
  });

  it('computes max(0, (requests − K·accepts) / (requests + 1))', () => {
    const { b } = breaker({ k: 1.5, minRequests: 1 });
    for (let i = 0; i < 10; i++) b.markSuccess();
    for (let i = 0; i < 30; i++) b.markFailure();
    // requests 40, accepts 10: (40 − 15) / 41
    expect(b.dropProbability()).toBeCloseTo(25 / 41, 10);
    expect(b.state()).toBe('throttling');
  });

  it('tolerates failures up to the K margin without dropping', () => {
    const { b } = breaker({ k: 1.5, minRequests: 1 });
    for (let i = 0; i < 20; i++) b.markSuccess();
    for (let i = 0; i < 10; i++) b.markFailure(); // 30 requests <= 1.5 × 20
    expect(b.dropProbability()).toBe(0);
  });

  it('drops with the computed probability, using the injected random source', () => {
    const rolls = [0.5, 0.4999];
    const { b } = breaker({ k: 1.5, minRequests: 1, random: () => rolls.shift() ?? 1 });
    for (let i = 0; i < 10; i++) b.markSuccess();
    for (let i = 0; i < 21; i++) b.markFailure();
    expect(b.dropProbability()).toBeCloseTo(0.5, 10); // (31 − 15) / 32
    expect(b.allow()).toBe(true); // a roll of 0.5 is not below 0.5
    expect(b.allow()).toBe(false);
  });

  it('counts a drop as a request, so the pressure stays off', () => {
    const { b } = breaker({ minRequests: 1, random: () => 0 });
    for (let i = 0; i < 10; i++) b.markFailure();
    const before = b.dropProbability();
    expect(b.allow()).toBe(false);
    expect(b.dropProbability()).toBeGreaterThan(before);
  });

  it('forgets old failures as the window rolls, and recovers', () => {
    const { b, clock } = breaker({ minRequests: 5, random: () => 0 });
    for (let i = 0; i < 50; i++) b.markFailure();
    expect(b.allow()).toBe(false);
    clock.now += 1000;
    expect(b.dropProbability()).toBe(0);
    expect(b.allow()).toBe(true);
  });

  it('lets traffic back gradually as accepts return (no cliff)', () => {
    const { b, clock } = breaker({ minRequests: 5, random: () => 0.5 });
    for (let i = 0; i < 40; i++) b.markFailure();
    const heavy = b.dropProbability();
    clock.now += 500; // half of the failures still in the window
    for (let i = 0; i < 10; i++) b.markSuccess();
    const lighter = b.dropProbability();
    expect(lighter).toBeLessThan(heavy);
    expect(lighter).toBeGreaterThan(0);
  });
});
