import { describe, expect, it } from 'vitest';
import type { GatewaySecond } from '../runner/result.ts';
import { LiveModel } from './model.ts';

function second(rps: number, p99 = 10): GatewaySecond {
  return { rps, successRate: 1, degradedRate: 0, p50: p99 / 2, p95: p99, p99, errors: 0 };
}

function modelAt(position: { x: number }, historySeconds = 60) {
  return new LiveModel({
    feed: 'lab',
    title: 't',
    latencyNote: 'n',
    xTitle: 'seconds',
    position: () => position.x,
    now: () => 1_000 * position.x,
    historySeconds,
  });
}

describe('LiveModel', () => {
  it('keeps seconds in order, replaces a second measured twice, and counts requests per gateway', () => {
    const at = { x: 5 };
    const model = modelAt(at);
    model.addSecond({ t: 2, gateways: { naive: second(20) } });
    model.addSecond({ t: 0, gateways: { naive: second(10) } });
    model.addSecond({ t: 1, gateways: { naive: second(30) } }, { naive: 29 });
    model.addSecond({ t: 2, gateways: { naive: second(21) } });
    const snapshot = model.snapshot();
    expect(snapshot.seconds.map((s) => [s.t, s.gateways.naive?.rps])).toEqual([
      [0, 10],
      [1, 30],
      [2, 21],
    ]);
    // The rate counts unless the feed knows the exact count (29 instead of 30).
    expect(snapshot.totals).toEqual({ naive: 20 + 10 + 29 + 21 });
    expect(snapshot.x.now).toBe(5);
  });

  it('bounds the history: seconds and closed bands older than historySeconds go, open bands stay', () => {
    const at = { x: 0 };
    const model = modelAt(at, 10);
    model.openBand({ key: 'early', from: 0, label: 'early', tone: 'strong' });
    model.closeBand('early', 3);
    model.openBand({ key: 'long', from: 1, label: 'long fault', tone: 'strong' });
    for (let t = 0; t < 30; t++) {
      at.x = t + 1;
      model.addSecond({ t, gateways: { naive: second(1) } });
    }
    const snapshot = model.snapshot();
    expect(snapshot.seconds.map((s) => s.t)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    expect(snapshot.bands.map((b) => b.key)).toEqual(['long']);
    // The totals are not bounded by the history: they count since the time base began.
    expect(snapshot.totals.naive).toBe(30);
  });

  it('closes only an open band, never before it began, and caps the closed ones', () => {
    const at = { x: 10 };
    const model = new LiveModel({
      feed: 'run',
      title: 't',
      latencyNote: 'n',
      xTitle: 's',
      position: () => at.x,
      maxBands: 2,
    });
    model.openBand({ key: 'a', from: 4, label: 'a', tone: 'plain' });
    model.closeBand('a', 2);
    model.closeBand('a', 9);
    expect(model.snapshot().bands).toEqual([{ key: 'a', from: 4, to: 4, label: 'a', tone: 'plain' }]);
    for (const key of ['b', 'c']) {
      model.openBand({ key, from: 5, label: key, tone: 'plain' });
      model.closeBand(key, 6);
    }
    expect(model.snapshot().bands.map((b) => b.key)).toEqual(['b', 'c']);
    expect(model.isOpen('c')).toBe(false);
  });

  it('tells subscribers of every change, bumps the version, and survives a throwing subscriber', () => {
    const model = modelAt({ x: 0 });
    const seen: number[] = [];
    model.subscribe(() => {
      throw new Error('a broken page');
    });
    const unsubscribe = model.subscribe(() => seen.push(model.snapshot().version));
    model.note('one');
    model.setStage({ label: 'fault', faults: ['latency on coin'], endsAt: null, tone: 'fault' });
    unsubscribe();
    model.note('two');
    expect(seen).toEqual([1, 2]);
    expect(model.snapshot().version).toBe(3);
  });

  it('keeps the last few notes and starts a new time base on reset', () => {
    const model = modelAt({ x: 3 });
    for (let i = 1; i <= 6; i++) model.note(`line ${i}`);
    model.addSecond({ t: 1, gateways: { naive: second(5) } });
    model.openBand({ key: 'x', from: 0, label: 'x', tone: 'plain' });
    model.resetSeries();
    const snapshot = model.snapshot();
    expect(snapshot.notes).toEqual(['line 3', 'line 4', 'line 5', 'line 6']);
    expect(snapshot.seconds).toEqual([]);
    expect(snapshot.bands).toEqual([]);
    expect(snapshot.totals).toEqual({});
  });

  it('refuses a history that is not positive', () => {
    expect(() => modelAt({ x: 0 }, 0)).toThrow(/historySeconds must be positive, got 0/);
  });
});
