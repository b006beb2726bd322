import { describe, expect, it } from 'vitest';
import { scriptedRandom, seededRandom } from './__fixtures__/seeded.ts';
import {
  Lane,
  type LaneObserver,
  type LatencyEffect,
  latencyDraw,
  latencyShare,
  MAX_PENALTY_MS,
  type Retransmissions,
  retransmissions,
  SEGMENT_RTO_MS,
  SYN_RTO_MS,
  shareAt,
  synLoss,
} from './emulation.ts';
import type { ProxyFault, ProxyFaultKind } from './faults.ts';
import { ProxyStats, Samples } from './stats.ts';

const T0 = 1_700_000_000_000;

function fault(
  kind: ProxyFaultKind,
  params: Record<string, number>,
  expiresAt = Number.POSITIVE_INFINITY,
): ProxyFault {
  return {
    id: `${kind}-${Object.values(params).join('-')}`,
    kind,
    params,
    leaseMs: 1000,
    appliedAt: T0,
    expiresAt,
  };
}

const never = () => 0;

describe('shareAt and latencyDraw', () => {
  it('combines several faults of a kind as independent dice, and only those in force at the time', () => {
    const faults = [
      fault('loss', { percent: 30 }),
      fault('loss', { percent: 50 }, T0 + 100),
      fault('reset', { percent: 100 }),
    ];
    expect(shareAt(faults, 'loss', T0)).toBeCloseTo(1 - 0.7 * 0.5);
    expect(shareAt(faults, 'loss', T0 + 100)).toBeCloseTo(0.3);
    expect(shareAt(faults, 'reset', T0)).toBe(1);
    expect(shareAt([], 'loss', T0)).toBe(0);
  });

  it('adds delays up, each ± uniform jitter, never below zero; undefined without a latency fault', () => {
    expect(latencyDraw([fault('loss', { percent: 50 })], 'downstream', never)).toBeUndefined();
    const faults = [
      fault('latency', { delayMs: 100, jitterMs: 40 }),
      fault('latency', { delayMs: 50, jitterMs: 0 }),
    ];
    expect(latencyDraw(faults, 'downstream', scriptedRandom([0.75, 0.9]))).toBe(120 + 50);
    expect(latencyDraw(faults, 'downstream', scriptedRandom([0, 0]))).toBe(60 + 50);
    const wide = [fault('latency', { delayMs: 10, jitterMs: 100 })];
    expect(latencyDraw(wide, 'downstream', scriptedRandom([0]))).toBe(0);
  });

  it('puts requestShare of the delay and of the jitter on requests, the rest on responses', () => {
    const toBackend = fault('latency', { delayMs: 100, jitterMs: 40, requestShare: 1 });
    expect(latencyDraw([toBackend], 'upstream', scriptedRandom([0.75]))).toBe(120);
    expect(latencyDraw([toBackend], 'downstream', never)).toBeUndefined();
    const both = fault('latency', { delayMs: 100, jitterMs: 40, requestShare: 0.5 });
    // Half the delay ± half the jitter each way: at the top of the range, 50 + 20.
    expect(latencyDraw([both], 'upstream', scriptedRandom([0.999_999_999]))).toBeCloseTo(70);
    expect(latencyDraw([both], 'downstream', scriptedRandom([0]))).toBe(30);
    expect([latencyShare(both.params, 'upstream'), latencyShare(both.params, 'downstream')]).toEqual([
      0.5, 0.5,
    ]);
  });

  it('adds several faults up way by way', () => {
    const faults = [
      fault('latency', { delayMs: 100, jitterMs: 0 }),
      fault('latency', { delayMs: 60, jitterMs: 0, requestShare: 1 }),
      fault('latency', { delayMs: 40, jitterMs: 0, requestShare: 0.5 }),
    ];
    expect(latencyDraw(faults, 'upstream', never)).toBe(60 + 20);
    expect(latencyDraw(faults, 'downstream', never)).toBe(100 + 20);
  });

  it('delays responses only when requestShare is left out, and draws no dice for requests', () => {
    const faults = [fault('latency', { delayMs: 100, jitterMs: 40 })];
    let drawn = 0;
    const counting = () => {
      drawn++;
      return 0.5;
    };
    expect(latencyShare(faults[0]!.params, 'upstream')).toBe(0);
    expect(latencyDraw(faults, 'upstream', counting)).toBeUndefined();
    expect(drawn).toBe(0);
    expect(latencyDraw(faults, 'downstream', counting)).toBe(100);
    expect(drawn).toBe(1);
  });
});

describe('retransmissions (loss as TCP feels it)', () => {
  it('draws no dice where no loss is in force', () => {
    let drawn = 0;
    const result = retransmissions(
      T0,
      SEGMENT_RTO_MS,
      () => 0,
      () => {
        drawn++;
        return 0;
      },
    );
    expect(result).toEqual({ penaltyMs: 0, lost: 0, rolls: 0, capped: false });
    expect(drawn).toBe(0);
  });

  it('costs 200 ms for a lost segment, doubling for each further loss of it', () => {
    const lossy = () => 0.5;
    expect(retransmissions(T0, SEGMENT_RTO_MS, lossy, scriptedRandom([0.9]))).toEqual({
      penaltyMs: 0,
      lost: 0,
      rolls: 1,
      capped: false,
    });
    expect(retransmissions(T0, SEGMENT_RTO_MS, lossy, scriptedRandom([0.1, 0.9]))).toMatchObject({
      penaltyMs: 200,
      lost: 1,
      rolls: 2,
    });
    expect(retransmissions(T0, SEGMENT_RTO_MS, lossy, scriptedRandom([0.1, 0.2, 0.3, 0.9]))).toMatchObject({
      penaltyMs: 200 + 400 + 800,
      lost: 3,
      rolls: 4,
    });
  });

  it('stops losing when the lease runs out, as judged at each retransmission', () => {
    const faults = [fault('loss', { percent: 100 }, T0 + 700)];
    const result = retransmissions(T0, SEGMENT_RTO_MS, (t) => shareAt(faults, 'loss', t), never);
    // Sent at 0, 200 and 600 (all lost, the lease still runs), then at 1400 (through).
    expect(result).toEqual({ penaltyMs: 1400, lost: 3, rolls: 3, capped: false });
  });

  it('caps one event at 30 s', () => {
    const result = retransmissions(T0, SEGMENT_RTO_MS, () => 1, never);
    expect(result).toEqual({ penaltyMs: MAX_PENALTY_MS, lost: 8, rolls: 8, capped: true });
  });

  it('a lost SYN costs 1 s, then 2 s more, … until the lease ends or the cap', () => {
    expect(SYN_RTO_MS).toBe(1000);
    expect(synLoss([fault('loss', { percent: 100 }, T0 + 300)], T0, never)).toEqual({
      penaltyMs: 1000,
      lost: 1,
      rolls: 1,
      capped: false,
    });
    expect(synLoss([fault('loss', { percent: 100 }, T0 + 2500)], T0, never).penaltyMs).toBe(1000 + 2000);
    expect(synLoss([fault('loss', { percent: 100 })], T0, never)).toEqual({
      penaltyMs: MAX_PENALTY_MS,
      lost: 5,
      rolls: 5,
      capped: true,
    });
    expect(synLoss([fault('latency', { delayMs: 5 })], T0, never).rolls).toBe(0);
  });
});

interface Recorded {
  released: [string, number, LatencyEffect][];
  segments: Retransmissions[];
}

function lane(direction: 'upstream' | 'downstream', faults: ProxyFault[], rolls: number[]) {
  const now = { t: T0 };
  const recorded: Recorded = { released: [], segments: [] };
  const observer: LaneObserver = {
    released: (d, hold, latency) => recorded.released.push([d, hold, latency]),
    segment: (_d, result) => recorded.segments.push(result),
  };
  const l = new Lane({
    direction,
    clock: () => now.t,
    random: scriptedRandom(rolls),
    faults: () => faults,
    observer,
  });
  return { lane: l, now, recorded };
}

const chunk = (text: string) => Buffer.from(text);

describe('lane', () => {
  it('passes chunks through at once with no fault', () => {
    const { lane: l, recorded } = lane('downstream', [], []);
    expect(l.push(chunk('a'))).toBe(T0);
    expect(l.due().map(String)).toEqual(['a']);
    expect(l.nextAt()).toBeUndefined();
    expect(recorded.released).toEqual([['downstream', 0, 'none']]);
  });

  it('delays responses by delay ± jitter and never releases a chunk before an earlier one', () => {
    const faults = [fault('latency', { delayMs: 100, jitterMs: 50 })];
    // a: +150 (jitter at its top); b, 10 ms later: +50 (at its bottom) — due at 60, held to 150.
    const { lane: l, now, recorded } = lane('downstream', faults, [0.999_999_999, 0]);
    const a = l.push(chunk('a'));
    now.t += 10;
    const b = l.push(chunk('bb'));
    expect(a).toBeCloseTo(T0 + 150);
    expect(b).toBe(a);
    expect(l.queuedBytes).toBe(3);
    expect(l.due(T0 + 149)).toEqual([]);
    expect(l.nextAt()).toBe(a);
    expect(l.due(T0 + 150).map(String)).toEqual(['a', 'bb']);
    expect(l.queuedBytes).toBe(0);
    expect(recorded.released).toEqual([
      ['downstream', 150, 'delayed'],
      ['downstream', 140, 'delayed'],
    ]);
  });

  it.each([
    ['downstream', 0],
    ['upstream', 1],
    ['upstream', 0.5],
  ] as const)(
    'keeps byte order over many chunks with random jitter (%s, requestShare %s)',
    (direction, share) => {
      const faults = [fault('latency', { delayMs: 20, jitterMs: 20, requestShare: share })];
      const random = seededRandom(7);
      const now = { t: T0 };
      const l = new Lane({ direction, clock: () => now.t, random, faults: () => faults });
      const out: number[] = [];
      let last = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < 1000; i++) {
        const at = l.push(Buffer.from([i % 256]));
        expect(at).toBeGreaterThanOrEqual(last);
        last = at;
        now.t += random() * 5;
        for (const c of l.due(now.t)) out.push(c[0]!);
      }
      for (const c of l.due(now.t + 100)) out.push(c[0]!);
      expect(out).toEqual(Array.from({ length: 1000 }, (_, i) => i % 256));
    },
  );

  it('leaves requests alone under a latency on responses (netem on the backend egress), and says so', () => {
    const { lane: l, recorded } = lane('upstream', [fault('latency', { delayMs: 500 })], []);
    expect(l.push(chunk('GET /'))).toBe(T0);
    expect(l.due().map(String)).toEqual(['GET /']);
    expect(recorded.released).toEqual([['upstream', 0, 'other-way']]);
  });

  it('delays requests by delay ± jitter under a latency on requests, never reordering them', () => {
    const faults = [fault('latency', { delayMs: 100, jitterMs: 50, requestShare: 1 })];
    const { lane: l, now, recorded } = lane('upstream', faults, [0.999_999_999, 0]);
    const first = l.push(chunk('GET / HTTP/1.1\r\n'));
    now.t += 10;
    const rest = l.push(chunk('host: x\r\n\r\n'));
    expect(first).toBeCloseTo(T0 + 150);
    expect(rest).toBe(first);
    expect(l.due(T0 + 149)).toEqual([]);
    expect(l.due(T0 + 150).map(String)).toEqual(['GET / HTTP/1.1\r\n', 'host: x\r\n\r\n']);
    expect(recorded.released).toEqual([
      ['upstream', 150, 'delayed'],
      ['upstream', 140, 'delayed'],
    ]);
  });

  it('splits a latency on both ways: half the delay on the request, half on the response', () => {
    const faults = [fault('latency', { delayMs: 300, jitterMs: 0, requestShare: 0.5 })];
    const request = lane('upstream', faults, []);
    const response = lane('downstream', faults, []);
    expect(request.lane.push(chunk('GET /'))).toBe(T0 + 150);
    expect(response.lane.push(chunk('200 OK'))).toBe(T0 + 150);
  });

  it('adds loss to latency on the request side', () => {
    const faults = [fault('latency', { delayMs: 100, requestShare: 1 }), fault('loss', { percent: 50 })];
    // latency roll (no jitter), then loss: lost once, then through.
    const { lane: l } = lane('upstream', faults, [0.5, 0.1, 0.9]);
    expect(l.push(chunk('a'))).toBe(T0 + 100 + 200);
  });

  it('holds a lost chunk for the RTO, and everything behind it (head-of-line blocking)', () => {
    const faults = [fault('loss', { percent: 50 })];
    // a: lost once then through; b: through at once.
    const { lane: l, now, recorded } = lane('upstream', faults, [0.1, 0.9, 0.9]);
    const a = l.push(chunk('a'));
    now.t += 5;
    const b = l.push(chunk('b'));
    expect(a).toBe(T0 + SEGMENT_RTO_MS);
    expect(b).toBe(a);
    expect(recorded.segments.map((s) => [s.lost, s.rolls, s.penaltyMs])).toEqual([
      [1, 2, 200],
      [0, 1, 0],
    ]);
    expect(l.due(T0 + 199)).toEqual([]);
    expect(l.due(T0 + 200).map(String)).toEqual(['a', 'b']);
  });

  it('adds loss to latency on the response side', () => {
    const faults = [fault('latency', { delayMs: 100 }), fault('loss', { percent: 50 })];
    // latency roll (no jitter), then loss: lost twice, then through.
    const { lane: l } = lane('downstream', faults, [0.5, 0.1, 0.1, 0.9]);
    expect(l.push(chunk('a'))).toBe(T0 + 100 + 200 + 400);
  });
});

describe('calibration figures', () => {
  it('observe the loss share near the configured one, with a seeded random source', () => {
    const stats = new ProxyStats(() => T0);
    const faults = [fault('loss', { percent: 30 })];
    const l = new Lane({
      direction: 'downstream',
      clock: () => T0,
      random: seededRandom(42),
      faults: () => faults,
      observer: stats,
    });
    for (let i = 0; i < 2000; i++) l.push(chunk('x'));
    const { loss } = stats.snapshot();
    expect(loss.segments.rolls).toBeGreaterThan(2000);
    expect(loss.segments.share).toBeGreaterThan(0.27);
    expect(loss.segments.share).toBeLessThan(0.33);
    expect(loss.addedMs).toBeGreaterThan(0.3 * 2000 * 200);
  });

  it('summarize held times and start a new window on take()', () => {
    let now = T0;
    const stats = new ProxyStats(() => now);
    for (const ms of [100, 110, 120, 130, 1000]) stats.released('downstream', ms, 'delayed');
    stats.released('downstream', 5, 'none');
    for (const ms of [0, 2]) stats.released('upstream', ms, 'other-way');
    stats.released('upstream', 5, 'none');
    stats.resetRolled(true);
    stats.resetRolled(false);
    stats.accepted();
    now += 50;
    const taken = stats.take();
    expect(taken).toMatchObject({
      since: T0,
      until: T0 + 50,
      connections: { accepted: 1, active: 1 },
      latency: { count: 5, meanMs: 292, p50Ms: 120, maxMs: 1000 },
      requestLatency: { count: 2, meanMs: 1, maxMs: 2 },
      reset: { rolls: 2, reset: 1, share: 0.5 },
    });
    expect(stats.snapshot()).toMatchObject({
      since: T0 + 50,
      connections: { accepted: 0, active: 1 },
      latency: { count: 0, meanMs: null },
      requestLatency: { count: 0, meanMs: null },
      loss: { segments: { share: null } },
    });
  });

  it('keep percentiles over the most recent samples when there are many', () => {
    const samples = new Samples(100);
    for (let i = 0; i < 1000; i++) samples.add(i < 900 ? 1 : 50);
    expect(samples.summary()).toMatchObject({ count: 1000, p50Ms: 50, maxMs: 50, meanMs: 5.9 });
  });
});
