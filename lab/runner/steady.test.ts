import { describe, expect, it } from 'vitest';
import type { SecondSummary, TargetStats } from '../load/generator.ts';
import { fakeTargetStats } from './fake-target.ts';
import { SteadyWatch, steadyCriteria } from './steady.ts';

const GATEWAYS = ['naive', 'resilient'];

/** A second in which every gateway answers as `stats` says (resilient: as usual, p50 10 ms). */
function second(
  t: number,
  naive: Partial<TargetStats> = {},
  resilient: Partial<TargetStats> = {},
): SecondSummary {
  return {
    second: t,
    durationMs: 1000,
    targets: { naive: fakeTargetStats(naive), resilient: fakeTargetStats(resilient) },
  };
}

const p50 = (ms: number): Partial<TargetStats> => ({ latencyMs: { p50: ms, p95: ms, p99: ms, max: ms } });

function watch(overrides = {}) {
  return new SteadyWatch(GATEWAYS, steadyCriteria(2_000, overrides));
}

describe('SteadyWatch', () => {
  it('is steady after two steady seconds in a row, not before', () => {
    const w = watch();
    expect(w.steady).toBe(false);
    expect(w.reason).toBe('the load generator reported no second yet');
    expect(w.add(second(0))).toEqual({ t: 0, problems: [], steady: false });
    expect(w.reason).toBe('only 1 steady second of the 2 in a row needed');
    expect(w.add(second(1))).toEqual({ t: 1, problems: [], steady: true });
    expect(w.reason).toBeUndefined();
  });

  it('takes a second unsteady when a gateway serves under 99% of its pages', () => {
    const w = watch();
    const lossy = { requests: 100, ok: 98, successRate: 0.98, errors: { timeout: 2 } };
    expect(w.add(second(0, lossy)).problems).toEqual(['naive 98% ok, p50 10ms, p99 30ms']);
    expect(w.add(second(1)).steady).toBe(false);
    expect(w.reason).toBe('second 0: naive 98% ok, p50 10ms, p99 30ms');
    expect(w.add(second(2)).steady).toBe(true);
  });

  it('takes a second unsteady when a request took over half the timeout', () => {
    const w = watch();
    const tail = { latencyMs: { p50: 10, p95: 20, p99: 1_200, max: 1_900 } };
    expect(w.add(second(0, {}, tail)).problems).toEqual(['resilient 100% ok, p50 10ms, p99 1.2s (over 1s)']);
  });

  it("judges a second's p50 against the gateway's lowest of late, within 1.5× or 20 ms", () => {
    const w = watch();
    w.add(second(0, p50(100)));
    // Fine alone: the lowest so far.
    expect(w.add(second(1, p50(40))).problems).toEqual([]);
    expect(w.steady).toBe(false);
    expect(w.reason).toBe('second 0: naive 100% ok, p50 100ms (usually 40ms), p99 100ms');
    // 59 ms is within 40 + 20; 61 would not be.
    expect(w.add(second(2, p50(59))).steady).toBe(true);
    expect(w.add(second(3, p50(61))).problems).toEqual(['naive 100% ok, p50 61ms (usually 40ms), p99 61ms']);
    // On slower pages the tolerance is 1.5×: 40 → 60 ms; on a 300 ms page, 450 ms.
    const slow = watch();
    slow.add(second(0, p50(300)));
    expect(slow.add(second(1, p50(450))).steady).toBe(true);
    expect(slow.add(second(2, p50(460))).problems).toEqual([
      'naive 100% ok, p50 460ms (usually 300ms), p99 460ms',
    ]);
  });

  it('forgets a lowest p50 older than its horizon: a machine busier for good is the new usual', () => {
    const w = watch({ horizonSeconds: 3 });
    w.add(second(0, p50(5)));
    expect(w.add(second(1, p50(50))).problems).toHaveLength(1);
    expect(w.add(second(2, p50(50))).problems).toHaveLength(1);
    // Second 0 is out of the last 3: 50 ms is now usual.
    expect(w.add(second(3, p50(50)))).toEqual({ t: 3, problems: [], steady: true });
  });

  it('takes a second unsteady when the generator was late or dropped sends, and says so once', () => {
    const w = watch();
    const behind = { sent: 30, late: 3, lateShare: 0.1, fellBehind: true };
    expect(w.add(second(0, behind, behind)).problems).toEqual(['the load generator sent 3 of 30 late']);
    const dropped = { sent: 28, dropped: 2, fellBehind: true };
    expect(w.add(second(1, {}, dropped)).problems).toEqual(['the load generator dropped 2 of 30 sends']);
  });

  it('takes a gateway without any answer, or missing from the second, as unsteady', () => {
    const w = watch();
    const silent = { requests: 0, ok: 0, successRate: null, latencyMs: null };
    expect(w.add(second(0, silent)).problems).toEqual(['naive no answer']);
    const onlyNaive: SecondSummary = { second: 1, durationMs: 1000, targets: { naive: fakeTargetStats() } };
    expect(w.add(onlyNaive).problems).toEqual(['resilient no answer']);
  });

  it('asks for as many steady seconds in a row as it is told', () => {
    const w = watch({ seconds: 3 });
    w.add(second(0));
    w.add(second(1));
    expect(w.steady).toBe(false);
    expect(w.add(second(2)).steady).toBe(true);
  });
});
