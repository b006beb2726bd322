import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLeaseBook, type Lease } from './leases.ts';

const T0 = 1_700_000_000_000;

function book(now: { t: number }) {
  const expired: Lease<'a' | 'b'>[] = [];
  const leases = createLeaseBook<'a' | 'b', Readonly<Record<string, number>>>({
    clock: () => now.t,
    onExpire: (lease) => expired.push(lease),
  });
  return { leases, expired };
}

describe('lease book', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('applies, renews (keeping appliedAt for the same kind), lists oldest first, removes and clears', () => {
    const now = { t: T0 };
    const { leases } = book(now);
    const first = leases.apply('x', 'a', { n: 1 }, 1000);
    expect(first).toEqual({
      lease: { id: 'x', kind: 'a', params: { n: 1 }, leaseMs: 1000, appliedAt: T0, expiresAt: T0 + 1000 },
      renewed: false,
    });
    expect(Object.isFrozen(first.lease)).toBe(true);
    leases.apply('y', 'b', { n: 2 }, 5000);
    now.t += 500;
    const renewal = leases.apply('x', 'a', { n: 3 }, 1000);
    expect(renewal.renewed).toBe(true);
    expect(renewal.lease).toMatchObject({ params: { n: 3 }, appliedAt: T0, expiresAt: T0 + 1500 });
    expect(leases.list().map((l) => l.id)).toEqual(['x', 'y']);
    // Another kind under the same id is a new fault, applied now.
    expect(leases.apply('x', 'b', {}, 1000).lease.appliedAt).toBe(T0 + 500);

    expect(leases.remove('x')).toBe(true);
    expect(leases.remove('x')).toBe(false);
    expect(leases.get('y')?.kind).toBe('b');
    expect(leases.clear()).toBe(1);
    expect(leases.list()).toEqual([]);
    leases.close();
  });

  it('never shows an expired lease, tells about each expiry once, and an expired id renews as new', () => {
    const now = { t: T0 };
    const { leases, expired } = book(now);
    leases.apply('x', 'a', {}, 1000);
    leases.apply('y', 'a', {}, 2000);
    now.t += 999;
    expect(leases.list().map((l) => l.id)).toEqual(['x', 'y']);
    now.t += 1;
    expect(leases.list().map((l) => l.id)).toEqual(['y']);
    expect(leases.get('x')).toBeUndefined();
    expect(leases.remove('x')).toBe(false);
    expect(expired.map((l) => l.id)).toEqual(['x']);
    expect(leases.apply('x', 'a', {}, 1000).renewed).toBe(false);
    now.t += 5000;
    expect(leases.clear()).toBe(0);
    expect(expired.map((l) => l.id)).toEqual(['x', 'y', 'x']);
    leases.close();
  });

  it('lists the same frozen array until a lease is applied, removed, cleared or runs out', () => {
    const now = { t: T0 };
    const { leases } = book(now);
    const empty = leases.list();
    expect(leases.list()).toBe(empty);
    leases.apply('x', 'a', {}, 1000);
    const one = leases.list();
    expect(one.map((l) => l.id)).toEqual(['x']);
    expect(Object.isFrozen(one)).toBe(true);
    now.t += 500;
    expect(leases.list()).toBe(one);
    leases.apply('y', 'b', {}, 100);
    const two = leases.list();
    expect(two.map((l) => l.id)).toEqual(['x', 'y']);
    // A renewal to a later expiry than the first, then both run out, each when due.
    leases.apply('y', 'b', {}, 2000);
    expect(leases.list()).not.toBe(two);
    now.t += 500;
    expect(leases.list().map((l) => l.id)).toEqual(['y']);
    now.t += 1499;
    expect(leases.list().map((l) => l.id)).toEqual(['y']);
    now.t += 1;
    expect(leases.list()).toEqual([]);
    leases.apply('z', 'a', {}, 1000);
    expect(leases.remove('z')).toBe(true);
    expect(leases.list()).toEqual([]);
    leases.apply('z', 'a', {}, 1000);
    expect(leases.clear()).toBe(1);
    expect(leases.list()).toEqual([]);
    leases.close();
  });
  it('keeps one unref’d timer, for the earliest expiry, and none once empty', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const expired: string[] = [];
    const leases = createLeaseBook<'a', Readonly<Record<string, number>>>({
      onExpire: (lease) => expired.push(lease.id),
    });
    const unref = vi.spyOn(globalThis, 'setTimeout');
    leases.apply('late', 'a', {}, 3000);
    leases.apply('early', 'a', {}, 1000);
    expect(vi.getTimerCount()).toBe(1);
    const timer = unref.mock.results.at(-1)?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);

    vi.advanceTimersByTime(1000);
    expect(expired).toEqual(['early']);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(2000);
    expect(expired).toEqual(['early', 'late']);
    expect(vi.getTimerCount()).toBe(0);

    leases.apply('x', 'a', {}, 1000);
    leases.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
