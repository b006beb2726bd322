import { describe, expect, it } from 'vitest';
import { fakeTargetStats } from './fake-target.ts';
import type { RunEvent } from './journal.ts';
import { createTerminalProgress, summaryLines } from './progress.ts';
import { gatewayPhaseStats, gatewaySecond, type RunResult } from './result.ts';

const EVENTS: RunEvent[] = [
  { type: 'variant-started', variant: 'default', settings: {} },
  { type: 'load-started', variant: 'default', warmupMs: 1000 },
  {
    type: 'phase-started',
    variant: 'default',
    phase: 'fault',
    durationMs: 20_000,
    faults: ['latency on coin (delay 400ms)'],
  },
  {
    type: 'second',
    variant: 'default',
    t: 3,
    gateways: {
      naive: gatewaySecond(
        fakeTargetStats({ achievedRps: 30, latencyMs: { p50: 400, p95: 410, p99: 412, max: 420 } }),
      ),
      resilient: gatewaySecond(fakeTargetStats({ achievedRps: 30, errors: { timeout: 2 } })),
    },
  },
];

function record(isTTY: boolean, now: () => number) {
  let text = '';
  const progress = createTerminalProgress({ write: (t) => (text += t), isTTY, now });
  progress.event({
    type: 'run-started',
    runId: 'r',
    experiment: { name: 'x', file: 'x.yaml' },
    target: 'local',
    variants: ['default'],
    phases: [],
    gateways: ['naive', 'resilient'],
    rate: 30,
  });
  for (const event of EVENTS) progress.event(event);
  progress.note('a note');
  progress.close();
  return text;
}

describe('terminal progress', () => {
  it('appends plain lines when not on a TTY', () => {
    const text = record(false, () => 1_000);
    expect(text).not.toContain('\r');
    expect(text).toContain('[default] phase fault (20s): latency on coin (delay 400ms)\n');
    expect(text).toContain(
      '[default] fault · latency on coin (delay 400ms) · 20s left │ naive 30 rps p99 412ms err 0 │ resilient 30 rps p99 30ms err 2\n',
    );
  });

  it('rewrites one status line on a TTY and keeps notes above it', () => {
    let now = 1_000;
    const text = record(true, () => (now += 4_000));
    expect(text).toContain('\r\x1b[2K[default] fault');
    const CLEAR = '\r\x1b[2K';
    const afterNote = text.split(`${CLEAR}a note\n`)[1] ?? '';
    expect(afterNote.startsWith(`${CLEAR}[default] fault `)).toBe(true);
    expect(afterNote).toMatch(/^[^\n]* \d+s left/);
    expect(text.endsWith('\n')).toBe(true);
  });

  /** The warm-up of a lab slow at first: two unsteady seconds, then steady at 3.2 s. */
  function warmingUp(isTTY: boolean): string {
    let text = '';
    const progress = createTerminalProgress({ write: (t) => (text += t), isTTY, now: () => 1_000 });
    progress.event({ type: 'variant-started', variant: 'default', settings: {} });
    progress.event({ type: 'load-started', variant: 'default', warmupMs: 1000, maxWarmupMs: 30_000 });
    for (const t of [0, 1]) {
      progress.event({
        type: 'warmup-waiting',
        variant: 'default',
        t,
        elapsedMs: (t + 1) * 1_050,
        problems: ['naive 57% ok, p50 1.93s, p99 2s (over 1s)', 'the load generator sent 3 of 30 late'],
      });
    }
    progress.event({
      type: 'warmup-finished',
      variant: 'default',
      ms: 3_200,
      minMs: 1_000,
      maxMs: 30_000,
      steady: true,
    });
    progress.close();
    return text;
  }

  it('tells each second the lab was not steady during the warm-up, then that it is', () => {
    const text = warmingUp(false);
    expect(text).toContain(
      '[default] waiting for the lab to be steady (1.1s): naive 57% ok, p50 1.93s, p99 2s (over 1s); the load generator sent 3 of 30 late\n',
    );
    expect(text).toContain('[default] waiting for the lab to be steady (2.1s): naive 57% ok');
    expect(text).toContain('[default] the lab is steady: measuring after 3.2s of warm-up\n');
  });

  it('shows the wait for a steady lab in the status line on a TTY', () => {
    const text = warmingUp(true);
    expect(text).toContain(
      '\r\x1b[2K[default] warm-up · waiting for the lab to be steady (2.1s): naive 57% ok, p50 1.93s, p99 2s (over 1s); the load generator sent 3 of 30 late',
    );
    expect(text).toContain('the lab is steady: measuring after 3.2s of warm-up');
  });

  it('says nothing more of a warm-up that was steady from the start', () => {
    let text = '';
    const progress = createTerminalProgress({ write: (t) => (text += t), isTTY: false });
    progress.event({ type: 'variant-started', variant: 'default', settings: {} });
    progress.event({ type: 'load-started', variant: 'default', warmupMs: 1000 });
    progress.event({
      type: 'warmup-finished',
      variant: 'default',
      ms: 2_000,
      minMs: 1_000,
      maxMs: 30_000,
      steady: true,
    });
    expect(text).not.toContain('steady');
  });
});

describe('summaryLines', () => {
  it('tabulates phases × gateways, the claims and the verdict', () => {
    const result = {
      experiment: { name: 'weak', description: '', file: 'weak.yaml' },
      status: 'completed',
      load: { rate: 30, endpoint: 'video', timeoutMs: 2000, gateways: ['naive', 'resilient'] },
      runs: [
        {
          variant: 'default',
          settings: {},
          warmupMs: 30_000,
          warmup: {
            ms: 30_000,
            minMs: 1_000,
            maxMs: 30_000,
            steady: false,
            reason: 'second 29: naive 57% ok, p50 1.93s, p99 2s (over 1s)',
          },
          phases: [
            {
              name: 'fault',
              startMs: 0,
              durationMs: 20_000,
              plannedDurationMs: 20_000,
              partial: false,
              faults: [],
              gateways: {
                naive: gatewayPhaseStats(
                  fakeTargetStats({ errors: { timeout: 3, '5xx:503': 1 }, successRate: 0.96 }),
                ),
              },
              services: { archive: { restarts: 1, panicsRecovered: 0 } },
              proxyRestarts: [
                {
                  instance: 'coin-1',
                  restarts: 1,
                  lastExitAt: '2026-11-24T14:03:29.000Z',
                  faults: 'reapplied',
                  reappliedAt: ['2026-11-24T14:03:30.000Z'],
                  note: '…',
                },
              ],
            },
          ],
          timeseries: [],
        },
      ],
      calibration: [],
      claims: [
        {
          variant: 'default',
          phase: 'fault',
          gateway: 'naive',
          metric: 'p99',
          expected: '> 300ms',
          actual: 30,
          holds: false,
        },
        {
          variant: 'default',
          phase: 'fault',
          gateway: 'resilient',
          metric: 'successRate',
          expected: '>= 0.99',
          actual: 1,
          holds: true,
        },
      ],
      verdict: 'violated',
      verdictReason: '1 of 2 claims did not hold',
      leftoverFaults: [],
    } as unknown as RunResult;
    const lines = summaryLines(result);
    expect(lines).toContain('  PHASE  GATEWAY    REQUESTS  RPS   SUCCESS  DEGRADED  P50   P99   ERRORS');
    expect(lines).toContain(
      '  fault  naive      100       10.0  96%      0%        10ms  30ms  timeout 3, 5xx:503 1',
    );
    expect(lines).toContain('  fault  resilient  -         -     -        -         -     -     -');
    expect(lines).toContain('  services — fault: archive 1 restart(s), 0 recovered panic(s)');
    expect(lines).toContain(
      '  warm-up: the lab was not steady after 30s (second 29: naive 57% ok, p50 1.93s, p99 2s (over 1s)); the first phase may show it warming up',
    );
    expect(lines).toContain(
      "  fault proxies — fault: coin-1 1 restart(s), the run's faults on it lost and put back",
    );
    expect(lines).toContain('  ✗ naive p99 > 300ms in fault: 30ms');
    expect(lines).toContain('  ✓ resilient successRate >= 0.99 in fault: 100%');
    expect(lines.slice(-2)).toEqual([
      'verdict: violated — 1 of 2 claims did not hold',
      'audit: no fault left in the lab',
    ]);
    expect(lines).toContain('measured by the built-in generator (latency from the intended send time)');
    expect(summaryLines({ ...result, driver: 'k6', k6Version: 'v2.2.0' })).toContain(
      'measured by k6 v2.2.0 (latency from the actual send)',
    );
  });
});
