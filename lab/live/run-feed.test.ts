import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../runner/journal.ts';
import type { GatewaySecond } from '../runner/result.ts';
import type { ProgressSink } from '../runner/run.ts';
import { createRunFeed } from './run-feed.ts';
import { withLiveFeed } from './run-live.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

function figures(rps: number, p99: number): GatewaySecond {
  return { rps, successRate: 1, degradedRate: 0, p50: p99 / 3, p95: p99, p99, errors: 0 };
}

/** A feed on a clock the test moves. */
function feedOnClock() {
  const clock = { now: T0 };
  const feed = createRunFeed({ now: () => clock.now, resultsDir: 'results' });
  const at = (seconds: number, event: RunEvent) => {
    clock.now = T0 + seconds * 1000;
    feed.sink.event(event);
  };
  return { clock, feed, at };
}

const STARTED: RunEvent = {
  type: 'run-started',
  runId: '20261124-100000-demo',
  experiment: { name: 'demo', file: 'experiments/demo.yaml' },
  target: 'local',
  variants: ['default'],
  phases: [
    { name: 'baseline', durationMs: 4_000 },
    { name: 'fault', durationMs: 6_000 },
  ],
  gateways: ['naive', 'resilient'],
  rate: 20,
};

describe('the run feed', () => {
  it('says what the warm-up waits for while the lab is not steady, and moves the planned end with it', () => {
    const { feed, at } = feedOnClock();
    at(0, STARTED);
    at(0, { type: 'variant-started', variant: 'default', settings: {} });
    at(0, { type: 'load-started', variant: 'default', warmupMs: 1_000, maxWarmupMs: 30_000 });
    at(2, {
      type: 'warmup-waiting',
      variant: 'default',
      t: 1,
      elapsedMs: 2_000,
      problems: ['naive 57% ok, p50 1.93s, p99 2s (over 1s)'],
    });
    expect(feed.model.snapshot().stage).toMatchObject({
      label: 'warm-up: waiting for the lab to be steady',
      step: 'naive 57% ok, p50 1.93s, p99 2s (over 1s)',
      endsAt: null,
    });
    at(6, {
      type: 'warmup-finished',
      variant: 'default',
      ms: 6_000,
      minMs: 1_000,
      maxMs: 30_000,
      steady: true,
    });
    expect(feed.model.snapshot().x).toMatchObject({ plannedEnd: 16 });
  });

  it('turns a run into the page state: stages, seconds, phase bands, active faults, the verdict', () => {
    const { clock, feed, at } = feedOnClock();
    at(0, STARTED);
    expect(feed.model.snapshot()).toMatchObject({
      title: 'demo',
      gateways: ['naive', 'resilient'],
      stage: { label: 'starting the lab', tone: 'idle' },
    });
    feed.sink.note('lab ready 12/23');
    at(13, { type: 'lab-ready', gateways: { naive: 'http://x', resilient: 'http://y' } });
    at(13, { type: 'variant-started', variant: 'default', settings: {} });
    at(13, { type: 'load-started', variant: 'default', warmupMs: 3_000 });

    let snapshot = feed.model.snapshot();
    // The x axis is the report's: seconds since the load started, planned to the last phase's end.
    expect(snapshot.x).toMatchObject({ now: 0, plannedEnd: 13, title: 'seconds since load started' });
    expect(snapshot.stage).toMatchObject({ label: 'warm-up', endsAt: T0 + 16_000 });
    expect(snapshot.notes).toEqual(['lab ready 12/23']);

    at(16, { type: 'phase-started', variant: 'default', phase: 'baseline', durationMs: 4_000, faults: [] });
    at(17, {
      type: 'second',
      variant: 'default',
      t: 3,
      gateways: { naive: figures(20, 12), resilient: figures(20, 9) },
    });
    snapshot = feed.model.snapshot();
    expect(snapshot.bands).toEqual([
      { key: 'warm-up', from: 0, to: 3, label: 'warm-up', tone: 'plain' },
      { key: 'phase:baseline', from: 3, to: null, label: 'baseline', tone: 'plain' },
    ]);
    expect(snapshot.stage).toMatchObject({ label: 'baseline', step: 'phase 1 of 2', endsAt: T0 + 20_000 });
    expect(snapshot.seconds).toEqual([
      { t: 3, gateways: { naive: figures(20, 12), resilient: figures(20, 9) } },
    ]);
    expect(snapshot.totals).toEqual({ naive: 20, resilient: 20 });

    at(20, { type: 'phase-finished', variant: 'default', phase: 'baseline', partial: false, services: {} });
    at(20, {
      type: 'phase-started',
      variant: 'default',
      phase: 'fault',
      durationMs: 6_000,
      faults: ['latency on coin (delay 300ms)'],
    });
    // Injecting: the phase is shown, its band not yet (the report's phase starts once faults are in place).
    expect(feed.model.snapshot().stage).toMatchObject({ label: 'fault', tone: 'fault', endsAt: null });
    expect(feed.model.isOpen('phase:fault')).toBe(false);
    at(20.5, {
      type: 'fault-injected',
      variant: 'default',
      phase: 'fault',
      fault: 'latency on coin (delay 300ms)',
      kind: 'latency',
      service: 'coin',
      applied: [
        { instance: 'coin-1', injector: 'fault-proxy', id: 'r-p1-f0' },
        { instance: 'coin-2', injector: 'fault-proxy', id: 'r-p1-f0' },
      ],
      leaseMs: 10_000,
    });
    snapshot = feed.model.snapshot();
    expect(snapshot.bands.at(-1)).toEqual({
      key: 'phase:fault',
      from: 7.5,
      to: null,
      label: 'fault',
      detail: 'latency on coin',
      tone: 'strong',
    });
    expect(snapshot.stage).toMatchObject({ faults: ['latency on coin (delay 300ms)'], endsAt: T0 + 26_500 });
    expect(snapshot.faults).toEqual([
      {
        key: 'r-p1-f0 r-p1-f0',
        description: 'latency on coin (delay 300ms)',
        instances: ['coin-1', 'coin-2'],
        expiresAt: null,
      },
    ]);

    at(26.5, {
      type: 'fault-removed',
      variant: 'default',
      phase: 'fault',
      ids: ['r-p1-f0'],
      reason: 'phase-end',
    });
    snapshot = feed.model.snapshot();
    expect(snapshot.faults).toEqual([]);
    expect(snapshot.bands.at(-1)).toMatchObject({ key: 'phase:fault', from: 7.5, to: 13.5 });

    // A second from another variant (a stale event) is not this variant's.
    at(27, { type: 'second', variant: 'other', t: 4, gateways: { naive: figures(1, 1) } });
    expect(feed.model.snapshot().seconds).toHaveLength(1);

    at(28, {
      type: 'claim',
      variant: 'default',
      phase: 'fault',
      gateway: 'resilient',
      metric: 'p99',
      expected: '< 350ms',
      actual: 120,
      holds: true,
    });
    at(28, { type: 'run-finished', status: 'completed', verdict: 'held', exitCode: 0 });
    clock.now = T0 + 29_000;
    snapshot = feed.model.snapshot();
    expect(snapshot.stage).toMatchObject({ label: 'finished', tone: 'done' });
    expect(snapshot.outcome).toEqual({
      status: 'completed',
      verdict: 'held',
      claims: [{ text: '✓ resilient p99 < 350ms in fault: 120ms', holds: true }],
      report: path.join('results', '20261124-100000-demo', 'report.html'),
    });
  });

  it('labels the phase a run was stopped in as the report does, and says it is rolling back', () => {
    const { feed, at } = feedOnClock();
    at(0, STARTED);
    at(0, { type: 'variant-started', variant: 'default', settings: {} });
    at(0, { type: 'load-started', variant: 'default', warmupMs: 0 });
    at(1, { type: 'phase-started', variant: 'default', phase: 'baseline', durationMs: 4_000, faults: [] });
    at(2, { type: 'rollback', reason: 'abort', error: 'SIGINT' });
    at(3, {
      type: 'run-finished',
      status: 'aborted',
      verdict: 'no-verdict',
      verdictReason: 'the run aborted: its claims are not judged',
      exitCode: 130,
    });
    const snapshot = feed.model.snapshot();
    expect(snapshot.bands).toEqual([
      { key: 'phase:baseline', from: 1, to: 2, label: 'baseline (cut short)', tone: 'plain' },
    ]);
    expect(snapshot.stage).toMatchObject({ label: 'aborted', tone: 'bad' });
    expect(snapshot.outcome).toMatchObject({
      verdict: 'no-verdict',
      reason: 'the run aborted: its claims are not judged',
    });
    expect(snapshot.notes).toContain('SIGINT');
  });

  it('starts a new time base for each variant and says which variant runs', () => {
    const { feed, at } = feedOnClock();
    at(0, { ...STARTED, variants: ['recovered', 'unrecovered'] } as RunEvent);
    at(0, { type: 'variant-started', variant: 'recovered', settings: { workerRecovery: true } });
    at(0, { type: 'load-started', variant: 'recovered', warmupMs: 1_000 });
    at(2, { type: 'second', variant: 'recovered', t: 1, gateways: { naive: figures(20, 5) } });
    at(30, { type: 'variant-started', variant: 'unrecovered', settings: { workerRecovery: false } });
    const snapshot = feed.model.snapshot();
    expect(snapshot.seconds).toEqual([]);
    expect(snapshot.x.now).toBe(0);
    expect(snapshot.stage.step).toBe('variant unrecovered (2 of 2)');
  });
});

describe('the latency note', () => {
  it('says from when the latencies run, by who measures them', () => {
    expect(createRunFeed().model.snapshot().latencyNote).toMatch(/intended send time/);
    expect(createRunFeed({ driver: 'k6' }).model.snapshot().latencyNote).toMatch(
      /measured by k6, from each request's actual send/,
    );
  });
});

describe('withLiveFeed', () => {
  it('gives the terminal and the page every event and note, and keeps a throwing page from the terminal', () => {
    const terminal: string[] = [];
    const primary = {
      event: (e: RunEvent) => terminal.push(e.type),
      note: (line: string) => terminal.push(line),
      close: () => terminal.push('closed'),
    };
    const page: ProgressSink = {
      event: () => {
        throw new Error('page broke');
      },
      note: () => {
        throw new Error('page broke');
      },
    };
    const both = withLiveFeed(primary, page);
    both.event({ type: 'warning', message: 'x' });
    both.note('a note');
    both.close();
    expect(terminal).toEqual(['warning', 'a note', 'closed']);
    expect(withLiveFeed(primary, undefined)).toBe(primary);
  });
});
