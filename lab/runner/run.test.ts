/**
 * The run's lifecycle against the fake target and fake generators, on fake time: what is written, in
 * which order the lab is touched, and above all that the rollback runs after an error, an abort and a
 * hung call, leaving nothing behind.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TargetStats } from '../load/generator.ts';
import { parseExperiment } from './experiment.ts';
import { createFakeTarget, type FakeTarget, fakeGenerators } from './fake-target.ts';
import { parseJournal, type RunEvent } from './journal.ts';
import type { RunResult } from './result.ts';
import {
  DEFAULT_TIMING,
  type RunContext,
  type RunOutcome,
  runExperiment,
  UnsupportedFaultError,
} from './run.ts';
import { type AppliedFault, LabBusyError } from './target.ts';

const EXPERIMENT = `
name: lifecycle
description: a fault phase between two calm ones
load: { rate: 10, endpoint: video }
variants:
  - { name: recovery-on, settings: { workerRecovery: true } }
phases:
  - { name: baseline, duration: 2s }
  - name: fault
    duration: 3s
    faults:
      - { kind: latency, service: coin, delay: 400ms, jitter: 20ms }
      - { kind: http-error, service: vip, status: 503, percent: 50, instances: [vip-1] }
  - { name: recovery, duration: 1s }
claims:
  - { gateway: resilient, phase: fault, expect: { successRate: ">= 0.99", p99: "< 350ms" } }
  - { gateway: naive, phase: fault, expect: { p99: "> 300ms" } }
`;

const START = new Date(2026, 10, 24, 9, 35, 12);
let out: string;

beforeEach(() => {
  vi.useFakeTimers({ now: START });
  out = mkdtempSync(path.join(tmpdir(), 'chaos-run-'));
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(out, { recursive: true, force: true });
});

/** Naive is slow in the fault phase, resilient is fine: the claims hold. */
function windowStats(window: string, target: string): Partial<TargetStats> {
  if (window === 'fault' && target === 'naive')
    return { latencyMs: { p50: 410, p95: 420, p99: 430, max: 450 } };
  return {};
}

interface Harness {
  readonly target: FakeTarget;
  readonly generators: ReturnType<typeof fakeGenerators>;
  readonly events: RunEvent[];
  readonly notes: string[];
  readonly abort: AbortController;
  readonly ctx: RunContext;
}

function harness(
  yaml = EXPERIMENT,
  options: {
    stats?: Parameters<typeof fakeGenerators>[0];
    timing?: RunContext['timing'];
    target?: FakeTarget;
  } = {},
): Harness {
  const target = options.target ?? createFakeTarget();
  const generators = fakeGenerators(options.stats ?? windowStats);
  const events: RunEvent[] = [];
  const notes: string[] = [];
  const abort = new AbortController();
  const ctx: RunContext = {
    experiment: parseExperiment(yaml, 'experiments/lifecycle.yaml'),
    target,
    outDir: out,
    signal: abort.signal,
    progress: { event: (e) => events.push(e), note: (line) => notes.push(line) },
    createGenerator: generators.factory,
    renderReport: (result) => `<html>${result.status}</html>`,
    // One steady second ends the warm-up: the fake lab is steady from its first, so measuring starts at
    // 1 s; the warm-up's own tests below use the default of two.
    timing: { leaseMs: 3_000, warmupMs: 1_000, steadySeconds: 1, ...options.timing },
    leaseNonce: 'a1b2',
  };
  return { target, generators, events, notes, abort, ctx };
}

async function runFor(ctx: RunContext, ms: number): Promise<RunOutcome> {
  const running = runExperiment(ctx);
  running.catch(() => {});
  await vi.advanceTimersByTimeAsync(ms);
  return running;
}

function files(outcome: RunOutcome) {
  const result = JSON.parse(readFileSync(outcome.files.result, 'utf8')) as RunResult;
  const journal = parseJournal(readFileSync(outcome.files.journal, 'utf8'));
  return { result, journal, types: journal.map((e) => e.type) };
}

describe('runExperiment', () => {
  it('runs every phase and writes the journal, result.json and the report', async () => {
    const h = harness();
    const outcome = await runFor(h.ctx, 10_000);
    const { result, journal, types } = files(outcome);

    expect(outcome.dir).toBe(path.join(out, '20261124-093512-lifecycle'));
    expect(outcome.exitCode).toBe(0);
    expect(readFileSync(path.join(outcome.dir, 'report.html'), 'utf8')).toBe('<html>completed</html>');
    expect(types[0]).toBe('run-started');
    expect(types.at(-1)).toBe('run-finished');
    expect(types.filter((t) => t !== 'second' && t !== 'fault-renewed')).toEqual([
      'run-started',
      'lab-ready',
      'variant-started',
      'settings-applied',
      'load-started',
      'warmup-finished',
      'phase-started',
      'phase-finished',
      'phase-started',
      'fault-injected',
      'fault-injected',
      'fault-removed',
      'phase-finished',
      'phase-started',
      'phase-finished',
      'variant-finished',
      'settings-cleared',
      'audit',
      'claim',
      'claim',
      'claim',
      'run-finished',
    ]);
    expect(types.filter((t) => t === 'second').length).toBeGreaterThanOrEqual(6);
    expect(journal.every((e) => typeof e.at === 'string')).toBe(true);

    expect(result).toMatchObject({
      experiment: { name: 'lifecycle', file: 'experiments/lifecycle.yaml' },
      target: 'local',
      driver: 'builtin',
      runId: '20261124-093512-lifecycle',
      status: 'completed',
      leftoverFaults: [],
      generator: { fellBehind: false, reason: null },
      verdict: 'held',
    });
    expect(result).not.toHaveProperty('k6Version');
    const [run] = result.runs;
    expect(run?.variant).toBe('recovery-on');
    expect(run?.settings).toEqual({ workerRecovery: true });
    expect(run?.phases.map((p) => [p.name, p.startMs, p.partial])).toEqual([
      ['baseline', 1_000, false],
      ['fault', 3_000, false],
      ['recovery', 6_000, false],
    ]);
    const fault = run?.phases[1];
    expect(fault?.durationMs).toBe(3_000);
    expect(fault?.faults).toEqual([
      {
        kind: 'latency',
        service: 'coin',
        instances: ['coin-1', 'coin-2'],
        params: { delayMs: 400, jitterMs: 20, requestShare: 0.5 },
        injector: 'fault-proxy',
        injectedAt: new Date(START.getTime() + 3_000).toISOString(),
        removedAt: new Date(START.getTime() + 6_000).toISOString(),
      },
      expect.objectContaining({ kind: 'http-error', instances: ['vip-1'], injector: 'fault-agent' }),
    ]);
    expect(Object.keys(fault?.gateways ?? {})).toEqual(['naive', 'parallel', 'resilient']);
    expect(fault?.gateways.naive).toMatchObject({
      requests: 100,
      latencyMs: { p99: 430 },
      fellBehind: false,
    });
    expect(fault?.services.coin).toEqual({ restarts: 0, panicsRecovered: 0 });
    expect(run?.timeseries[0]?.gateways.resilient).toMatchObject({ rps: 10, p99: 30, errors: 0 });
    expect(result.calibration).toEqual([
      {
        variant: 'recovery-on',
        phase: 'fault',
        fault: 'latency on coin (delay 400ms, jitter 20ms)',
        kind: 'latency',
        service: 'coin',
        configured: { addedLatencyMs: 400, jitterMs: 20, requestLatencyMs: 200, responseLatencyMs: 200 },
        observed: { addedLatencyMs: 401.5 },
      },
      expect.objectContaining({ fault: 'http-error on vip-1 (503 on 50%)', configured: { errorRate: 0.5 } }),
    ]);
    expect(result.claims).toEqual([
      expect.objectContaining({
        variant: 'recovery-on',
        gateway: 'resilient',
        metric: 'successRate',
        actual: 1,
        holds: true,
      }),
      expect.objectContaining({
        gateway: 'resilient',
        metric: 'p99',
        expected: '< 350ms',
        actual: 30,
        holds: true,
      }),
      expect.objectContaining({ gateway: 'naive', metric: 'p99', actual: 430, holds: true }),
    ]);

    // The lab was touched in this order, and left as found.
    const t = h.target;
    expect(t.calls[0]).toBe('prepare');
    expect(t.calls.at(-1)).toBe('release');
    expect(t.callsTo('applySettings')[0]).toMatch(
      /^applySettings \{"workerRecovery":true\} 3000 r20261124093512-a1b2-v0-settings$/,
    );
    expect(t.callsTo('clearSettings')).toHaveLength(1);
    expect(t.callsTo('inject')).toEqual([
      'inject latency coin r20261124093512-a1b2-v0-p1-f0',
      'inject http-error vip r20261124093512-a1b2-v0-p1-f1',
    ]);
    // Each injector takes off its own: the proxies the latency, the agents the http-error.
    expect(t.callsTo('remove')).toEqual([
      'remove r20261124093512-a1b2-v0-p1-f0',
      'remove r20261124093512-a1b2-v0-p1-f1',
    ]);
    expect(t.callsTo('clearAll')).toEqual([]);
    expect(t.leases.size).toBe(0);
    expect(t.settings).toBeUndefined();
    const [generator] = h.generators.created;
    // Only the time a phase's faults are all in place is the phase's window.
    expect(generator?.calls).toEqual([
      'start warmup',
      'mark baseline',
      'mark baseline:closing',
      'mark fault:injecting',
      'mark fault',
      'mark fault:closing',
      'mark recovery',
      'mark recovery:closing',
      'stop drain',
    ]);
    expect(generator?.options.targets.map((g) => g.url)).toEqual([
      'http://127.0.0.1:1',
      'http://127.0.0.1:2',
      'http://127.0.0.1:3',
    ]);
    // Settled before the variant and before each phase, with nothing to wait for.
    expect(t.callsTo('settle')).toHaveLength(4);
    expect(t.calls.slice(1, 3)).toEqual([
      'settle',
      'applySettings {"workerRecovery":true} 3000 r20261124093512-a1b2-v0-settings',
    ]);
    expect(run).not.toHaveProperty('settledMs');
    expect(run?.phases.some((p) => 'settledMs' in p)).toBe(false);
  });

  it('renders report.html with the report module when no renderer is given', async () => {
    const h = harness();
    const { renderReport: _stub, ...ctx } = h.ctx;
    const outcome = await runFor(ctx, 10_000);
    expect(outcome.files.report).toBe(path.join(outcome.dir, 'report.html'));
    expect(readFileSync(outcome.files.report as string, 'utf8')).toMatch(/^<!doctype html>/i);
    expect(h.notes.filter((n) => n.startsWith('warning'))).toEqual([]);
  });

  it('waits for the lab to settle before the variant and each phase, says how long, and counts no restart of the wait', async () => {
    const target = createFakeTarget();
    // Before the variant, before baseline, before fault, before recovery.
    target.settleWaits.push(1_500, 0, 0, 2_000);
    const settle = target.settle?.bind(target);
    target.settle = async (progress, signal) => {
      const settled = await (settle as NonNullable<typeof settle>)(progress, signal);
      // A backend crash-looping while the lab settles: its restarts are the wait's, not a phase's.
      if (settled.waitedMs > 0) target.counterValues.like.restarts += 3;
      return settled;
    };
    const h = harness(undefined, { target });
    const outcome = await runFor(h.ctx, 15_000);
    const { result, journal } = files(outcome);
    expect(result.status).toBe('completed');
    const [run] = result.runs;
    expect(run?.settledMs).toBe(1_500);
    expect(run?.phases.map((p) => [p.name, p.settledMs, p.services.like?.restarts])).toEqual([
      ['baseline', undefined, 0],
      ['fault', undefined, 0],
      ['recovery', 2_000, 0],
    ]);
    // The wait is outside the phase's window: recovery starts 2 s later than it would have.
    expect(run?.phases.map((p) => p.startMs)).toEqual([1_000, 3_000, 8_000]);
    expect(journal.filter((e) => e.type === 'lab-settled')).toEqual([
      expect.objectContaining({ variant: 'recovery-on', waitedMs: 1_500 }),
      expect.objectContaining({ variant: 'recovery-on', phase: 'recovery', waitedMs: 2_000 }),
    ]);
    expect(journal.find((e) => e.type === 'lab-settled')).not.toHaveProperty('phase');
    expect(h.notes).toContain('fake lab: waiting 2000 ms for its instances');
    expect(h.notes).toContain(
      'the lab settled before phase "recovery": waited 2s for every backend instance to be ready',
    );
    expect(h.notes).toContain(
      'the lab settled before variant "recovery-on": waited 1.5s for every backend instance to be ready',
    );
  });

  it('renews the leases while a long phase runs, and never after removing them', async () => {
    const yaml = `
name: long
description: one long fault
load: { rate: 10, endpoint: video }
variants: [{ name: off, settings: { workerRecovery: false } }]
phases:
  - name: fault
    duration: 10s
    faults: [{ kind: loss, service: like, percent: 30 }]
  - { name: after, duration: 4s }
`;
    const h = harness(yaml, { timing: { leaseMs: 3_000, warmupMs: 1_000 } });
    const outcome = await runFor(h.ctx, 16_000);
    expect(outcome.result.status).toBe('completed');
    const renewals = files(outcome).journal.filter((e) => e.type === 'fault-renewed');
    // Every second for 10 s (the first at 1 s of the warm-up finds nothing to renew).
    expect(renewals.length).toBeGreaterThanOrEqual(9);
    expect(renewals.length).toBeLessThanOrEqual(10);
    // Settings renewed for the whole variant (15 s, one per second), plus the first application.
    expect(h.target.callsTo('applySettings').length).toBeGreaterThanOrEqual(14);
    // The fake revives a removed lease when it is renewed: an empty lab proves no renewal came late.
    expect(outcome.result.leftoverFaults).toEqual([]);
    expect(h.target.leases.size).toBe(0);
  });

  it('rolls back after an error in phase 2: every fault removed, status failed, nothing left', async () => {
    const yaml = `
name: broken
description: the second phase fails half-way through its injections
load: { rate: 10, endpoint: video }
phases:
  - name: first
    duration: 2s
    faults: [{ kind: latency, service: coin, delay: 100ms }]
  - name: second
    duration: 2s
    faults:
      - { kind: http-error, service: vip, status: 503, percent: 50 }
      - { kind: loss, service: like, percent: 10 }
  - { name: third, duration: 2s }
`;
    const target = createFakeTarget();
    target.failOn(
      'inject',
      (fault) => (fault as { kind: string }).kind === 'loss',
      new Error('proxy like-1 said 500'),
    );
    const h = harness(yaml, { target });
    const outcome = await runFor(h.ctx, 10_000);
    const { result, types } = files(outcome);

    expect(outcome.exitCode).toBe(1);
    expect(result.status).toBe('failed');
    expect(result.error).toBe('proxy like-1 said 500');
    expect(result.verdict).toBe('no-verdict');
    expect(result.leftoverFaults).toEqual([]);
    expect(target.leases.size).toBe(0);
    expect(target.callsTo('remove')).toEqual([
      'remove r20261124093512-a1b2-v0-p0-f0', // phase 1, at its end
      'remove r20261124093512-a1b2-v0-p1-f0', // phase 2, by the rollback
    ]);
    // The failed injection may have applied part of its fault: the last resort runs too.
    expect(target.callsTo('clearAll')).toEqual(['clearAll']);
    expect(h.generators.created[0]?.calls.at(-1)).toBe('stop cancel');
    expect(result.runs[0]?.phases.map((p) => [p.name, p.partial])).toEqual([
      ['first', false],
      ['second', true],
    ]);
    expect(result.runs[0]?.phases[1]?.faults[0]?.removedAt).not.toBeNull();
    expect(types).toContain('rollback');
    expect(types.at(-1)).toBe('run-finished');
    expect(target.calls.slice(-2)).toEqual(['audit', 'release']);
  });

  it('aborts in the middle of a phase: rollback, partial result with status aborted, exit 130', async () => {
    const h = harness();
    const running = runExperiment(h.ctx);
    // Warm-up 1 s + baseline 2 s + 1.5 s into the fault phase.
    await vi.advanceTimersByTimeAsync(4_500);
    h.abort.abort('SIGINT');
    await vi.advanceTimersByTimeAsync(100);
    const outcome = await running;
    const { result, journal } = files(outcome);

    expect(outcome.exitCode).toBe(130);
    expect(result.status).toBe('aborted');
    expect(result.error).toBe('interrupted by SIGINT during phase "fault"');
    expect(result.verdict).toBe('no-verdict');
    expect(result.claims.every((c) => c.holds === null && c.reason === 'the run aborted')).toBe(true);
    expect(result.leftoverFaults).toEqual([]);
    expect(h.target.leases.size).toBe(0);
    expect(h.target.settings).toBeUndefined();
    expect(h.target.callsTo('clearSettings')).toHaveLength(1);
    expect(h.generators.created[0]?.calls.at(-1)).toBe('stop cancel');
    const phases = result.runs[0]?.phases ?? [];
    expect(phases.map((p) => [p.name, p.partial])).toEqual([
      ['baseline', false],
      ['fault', true],
    ]);
    expect(phases[1]?.durationMs).toBe(1_500);
    expect(phases[1]?.faults.every((f) => f.removedAt !== null)).toBe(true);
    expect(journal.find((e) => e.type === 'fault-removed')).toMatchObject({ reason: 'rollback' });
    expect(journal.at(-1)).toMatchObject({ type: 'run-finished', status: 'aborted', exitCode: 130 });
    expect(h.events.find((e) => e.type === 'rollback')).toEqual({
      type: 'rollback',
      reason: 'abort',
      error: 'interrupted by SIGINT during phase "fault"',
    });
  });

  it('bounds a rollback step that hangs, then clears everything as a last resort', async () => {
    const h = harness(undefined, { timing: { rollbackTimeoutMs: 2_000 } });
    const running = runExperiment(h.ctx);
    await vi.advanceTimersByTimeAsync(4_500);
    h.target.hangOn('remove');
    h.abort.abort('SIGTERM');
    await vi.advanceTimersByTimeAsync(2_500);
    const outcome = await running;
    expect(outcome.result.status).toBe('aborted');
    expect(outcome.result.rollbackProblems).toEqual([
      'removing latency on coin (delay 400ms, jitter 20ms), http-error on vip-1 (503 on 50%) did not finish within 2s',
    ]);
    expect(h.target.callsTo('clearAll')).toEqual(['clearAll']);
    expect(outcome.result.leftoverFaults).toEqual([]);
  });

  it('does not let a hung injection keep Ctrl-C from the rollback', async () => {
    const h = harness(undefined, { timing: { rollbackTimeoutMs: 2_000 } });
    h.target.hangOn('inject');
    const running = runExperiment(h.ctx);
    await vi.advanceTimersByTimeAsync(3_500);
    expect(h.target.callsTo('inject')).toHaveLength(1);
    h.abort.abort('SIGINT');
    await vi.advanceTimersByTimeAsync(2_500);
    const outcome = await running;
    expect(outcome.result.status).toBe('aborted');
    // The lock is held by the hung call: removal times out, and the last resort clears the lab.
    expect(h.target.callsTo('clearAll')).toEqual(['clearAll']);
    expect(h.target.calls.slice(-2)).toEqual(['audit', 'release']);
  });

  it('fails the run when the leases cannot be renewed twice in a row', async () => {
    const target = createFakeTarget();
    // The fault proxy's leases (the latency fault) cannot be renewed; the agents' can.
    const latency = (applied: unknown) => (applied as AppliedFault[])[0]?.fault.kind === 'latency';
    target.failOn('renew', latency);
    target.failOn('renew', latency);
    const h = harness(undefined, { target, timing: { leaseMs: 900 } });
    const outcome = await runFor(h.ctx, 10_000);
    expect(outcome.result.status).toBe('failed');
    expect(outcome.result.error).toMatch(/could not be renewed twice in a row \(last: fake renew failure\)/);
    expect(target.leases.size).toBe(0);
  });

  it('stops at once when the lab dies mid-phase: failed, the load stopped, the partial result kept, the audit unknown', async () => {
    const h = harness();
    const running = runExperiment(h.ctx);
    running.catch(() => {});
    // Warm-up 1 s + baseline 2 s + 1.5 s into the fault phase.
    await vi.advanceTimersByTimeAsync(4_500);
    // Gone with its supervisor: nothing answers the audit any more.
    h.target.failOn(
      'audit',
      () => true,
      new Error('auditing the lab for leftover faults: connection refused'),
    );
    h.target.loseLab('its supervisor (pid 4242) is gone');
    await vi.advanceTimersByTimeAsync(2_000);
    const outcome = await running;
    const { result } = files(outcome);
    expect(result).toMatchObject({
      status: 'failed',
      error: 'the lab stopped during the run: its supervisor (pid 4242) is gone',
      verdict: 'no-verdict',
      leftoverFaults: null,
      auditError: 'not audited: the lab stopped during the run: its supervisor (pid 4242) is gone',
    });
    // A lab that is gone is not asked again and again: the run ends at once.
    expect(h.target.callsTo('audit')).toEqual([]);
    expect(result.runs[0]?.phases.map((p) => p.name)).toEqual(['baseline', 'fault']);
    expect(h.generators.created[0]?.calls.at(-1)).toBe('stop cancel');
  });

  it('fails the run when the load driver dies mid-phase: rollback, the load stopped, the driver named', async () => {
    const h = harness();
    const running = runExperiment({ ...h.ctx, driver: { name: 'k6', version: 'v2.2.0' } });
    running.catch(() => {});
    // Warm-up 1 s + baseline 2 s + 1.5 s into the fault phase.
    await vi.advanceTimersByTimeAsync(4_500);
    const options = h.generators.created[0]?.options;
    // k6 is started with a duration: the longest warm-up and every phase.
    expect(options?.plannedDurationMs).toBe(30_000 + 2_000 + 3_000 + 1_000);
    options?.onFailure?.(
      new Error('k6 exited (code 107: the script threw an error) before the run was over'),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    const outcome = await running;
    const { result } = files(outcome);

    expect(outcome.exitCode).toBe(1);
    expect(result).toMatchObject({
      status: 'failed',
      error:
        'the load driver failed: k6 exited (code 107: the script threw an error) before the run was over',
      driver: 'k6',
      k6Version: 'v2.2.0',
      verdict: 'no-verdict',
      leftoverFaults: [],
    });
    expect(h.target.leases.size).toBe(0);
    expect(h.generators.created[0]?.calls.at(-1)).toBe('stop cancel');
    expect(result.runs[0]?.phases.map((p) => [p.name, p.partial])).toEqual([
      ['baseline', false],
      ['fault', true],
    ]);
  });

  it('gives each run its own lease ids, even two started in the same second on one lab', async () => {
    const injected: string[] = [];
    for (const _ of [1, 2]) {
      vi.setSystemTime(START);
      const h = harness();
      await runFor({ ...h.ctx, leaseNonce: undefined }, 10_000);
      injected.push(h.target.callsTo('inject')[0] ?? '');
    }
    expect(injected[0]).toMatch(/^inject latency coin r20261124093512-[0-9a-f]{4}-v0-p1-f0$/);
    expect(injected[1]).toMatch(/^inject latency coin r20261124093512-[0-9a-f]{4}-v0-p1-f0$/);
    expect(injected[0]).not.toBe(injected[1]);
  });

  it('refuses a fault the target cannot inject before touching anything', async () => {
    const target = createFakeTarget({ unsupported: { latency: 'the kernel has no sch_netem' } });
    const h = harness(undefined, { target });
    const outDir = path.join(out, 'not-created');
    const error = await runExperiment({ ...h.ctx, outDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedFaultError);
    expect((error as Error).message).toContain(
      'experiments/lifecycle.yaml: phases[1].faults[0] (phase "fault"): the local target cannot inject latency: the kernel has no sch_netem',
    );
    expect(target.calls).toEqual([]);
    expect(existsSync(outDir)).toBe(false);
  });

  it('asks the target about an injector asked for by name, and refuses the run before anything starts when its lab cannot', async () => {
    const netem = EXPERIMENT.replace(
      '{ kind: latency, service: coin, delay: 400ms, jitter: 20ms }',
      '{ kind: latency, service: coin, delay: 400ms, jitter: 20ms, injector: netem }',
    );
    const target = createFakeTarget({
      refusedInjectors: { 'tc-netem': 'tc netem in a pod: Error: Specified qdisc kind is unknown.' },
    });
    const h = harness(netem, { target });
    expect(h.ctx.experiment.phases[1]?.faults[0]?.injector).toBe('tc-netem');
    const outDir = path.join(out, 'not-created');
    const error = await runExperiment({ ...h.ctx, outDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedFaultError);
    expect((error as Error).message).toContain(
      'experiments/lifecycle.yaml: phases[1].faults[0] (phase "fault"): injector netem cannot work on the local target: tc netem in a pod: Error: Specified qdisc kind is unknown.',
    );
    expect((error as Error).message).toContain('nothing was started');
    expect(target.calls).toEqual(['refusedInjectors tc-netem']);
    expect(existsSync(outDir)).toBe(false);
  });

  it('refuses a run on a lab another run holds, naming that run, before touching anything', async () => {
    const heldBy = { pid: 4242, experiment: 'tour', startedAt: new Date(Date.now() - 30_000).toISOString() };
    const target = createFakeTarget({ heldBy });
    const h = harness(undefined, { target });
    const outDir = path.join(out, 'not-created');
    const error = await runExperiment({ ...h.ctx, outDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LabBusyError);
    expect((error as Error).message).toMatch(/^the lab is busy: a run of tour \(pid 4242, since /);
    expect((error as Error).message).toContain('nothing was started');
    expect(target.calls).toEqual([]);
    expect(existsSync(outDir)).toBe(false);
  });

  it('holds the lab for the whole run and lets it go at the end, after a failure too', async () => {
    const h = harness();
    await runFor(h.ctx, 10_000);
    expect(h.target.locks).toEqual([`hold lifecycle ${process.pid}`, 'release lifecycle']);
    const failing = harness();
    failing.target.failOn('prepare');
    const outcome = await runFor(failing.ctx, 10_000);
    expect(outcome.result.status).toBe('failed');
    expect(failing.target.locks).toEqual([`hold lifecycle ${process.pid}`, 'release lifecycle']);
  });

  it('does not ask the target about injectors when no fault names one', async () => {
    const h = harness();
    await runFor(h.ctx, 10_000);
    expect(h.target.calls.filter((c) => c.startsWith('refusedInjectors'))).toEqual([]);
  });

  it('gives no verdict when the generator fell behind in a phase', async () => {
    const h = harness(undefined, {
      stats: (window, t) =>
        window === 'fault' ? { ...windowStats(window, t), fellBehind: true, dropped: 7 } : {},
    });
    const outcome = await runFor(h.ctx, 10_000);
    expect(outcome.result.status).toBe('completed');
    expect(outcome.result.verdict).toBe('no-verdict');
    expect(outcome.result.verdictReason).toMatch(
      /^the load generator fell behind \(fault: naive 7 of 107 sends dropped/,
    );
    expect(outcome.result.claims.every((c) => c.holds === null)).toBe(true);
    expect(outcome.exitCode).toBe(1);
  });
});

describe('the warm-up', () => {
  /** The warm-up's defaults (the harness ends it after one steady second). */
  const DEFAULTS = { steadySeconds: DEFAULT_TIMING.steadySeconds };
  /** A second of naive that a warming lab answers: 57% of its pages, at p50 1.93 s. */
  const WARMING: Partial<TargetStats> = {
    requests: 100,
    ok: 57,
    successRate: 0.57,
    latencyMs: { p50: 1_930, p95: 1_990, p99: 2_000, max: 2_000 },
    errors: { timeout: 43 },
  };
  const waiting = (events: readonly RunEvent[]) =>
    events.flatMap((e) => (e.type === 'warmup-waiting' ? [e] : []));

  it('starts measuring after the minimum when the lab is steady by then', async () => {
    const h = harness(undefined, { timing: { ...DEFAULTS, warmupMs: 3_000 } });
    const outcome = await runFor(h.ctx, 15_000);
    const { result, journal } = files(outcome);
    const [run] = result.runs;
    expect(result.status).toBe('completed');
    expect(run?.warmup).toEqual({ ms: 3_000, minMs: 3_000, maxMs: 30_000, steady: true });
    expect(run?.warmupMs).toBe(3_000);
    expect(run?.phases[0]?.startMs).toBe(3_000);
    expect(waiting(journal)).toEqual([]);
    expect(journal.find((e) => e.type === 'warmup-finished')).toMatchObject({ steady: true, ms: 3_000 });
    expect(journal.find((e) => e.type === 'load-started')).toMatchObject({
      warmupMs: 3_000,
      maxWarmupMs: 30_000,
    });
    expect(h.notes.filter((n) => n.startsWith('warning'))).toEqual([]);
  });

  it('needs two steady seconds in a row: a minimum of 1 s ends at the second one', async () => {
    const h = harness(undefined, { timing: { ...DEFAULTS, warmupMs: 1_000 } });
    const { result } = files(await runFor(h.ctx, 15_000));
    expect(result.runs[0]?.warmup).toMatchObject({ ms: 2_000, steady: true });
    expect(result.runs[0]?.phases[0]?.startMs).toBe(2_000);
  });

  it('waits for a lab slow at first, telling each unsteady second, then measures it steady', async () => {
    const h = harness(undefined, {
      timing: DEFAULTS,
      // Naive warms up for 4 s, then answers as usual.
      stats: (window, target, second) =>
        window === 'warmup' && target === 'naive' && second !== undefined && second < 4
          ? WARMING
          : windowStats(window, target),
    });
    const outcome = await runFor(h.ctx, 20_000);
    const { result, journal } = files(outcome);
    const [run] = result.runs;
    expect(result.status).toBe('completed');
    expect(result.verdict).toBe('held');
    // Seconds 0–3 are reported at 1–4 s, the steady 4 and 5 at 5 and 6 s.
    expect(run?.warmup).toEqual({ ms: 6_000, minMs: 1_000, maxMs: 30_000, steady: true });
    expect(run?.warmupMs).toBe(6_000);
    expect(run?.phases.map((p) => p.startMs)).toEqual([6_000, 8_000, 11_000]);
    expect(waiting(journal).map((e) => [e.t, e.elapsedMs, e.problems])).toEqual(
      [0, 1, 2, 3].map((t) => [t, (t + 1) * 1_000, ['naive 57% ok, p50 1.93s, p99 2s (over 1s)']]),
    );
    // The person watching saw it: the waiting seconds, then the lab steady.
    expect(waiting(h.events)).toHaveLength(4);
    const types = h.events.map((e) => e.type).filter((t) => t.startsWith('warmup') || t === 'phase-started');
    expect(types.slice(0, 6)).toEqual([
      'warmup-waiting',
      'warmup-waiting',
      'warmup-waiting',
      'warmup-waiting',
      'warmup-finished',
      'phase-started',
    ]);
    expect(h.notes.filter((n) => n.startsWith('warning'))).toEqual([]);
    // The warm-up's seconds stay in the timeseries, before the first phase.
    expect(run?.timeseries[0]?.gateways.naive).toMatchObject({ successRate: 0.57, p50: 1_930 });
  });

  it('judges latency against the lowest of late: a second that looked usual is not once the lab is faster', async () => {
    const h = harness(undefined, {
      timing: { ...DEFAULTS, warmupMs: 3_000 },
      // Every page served, under the p99 bound, but 300 and 250 ms for 2 s, then 10 ms.
      stats: (window, target, second) =>
        window === 'warmup' && target === 'parallel' && second !== undefined && second < 2
          ? { latencyMs: { p50: 300 - second * 50, p95: 320, p99: 340, max: 350 } }
          : windowStats(window, target),
    });
    const { result } = files(await runFor(h.ctx, 20_000));
    // At 3 s the last two seconds are 250 and 10 ms: not steady, though 250 ms was the lowest when it came.
    expect(result.runs[0]?.warmup).toMatchObject({ ms: 4_000, steady: true });
  });

  it('goes on after the bound when the lab never gets steady, with a warning in the journal, the terminal and the result', async () => {
    const h = harness(undefined, {
      timing: DEFAULTS,
      stats: (window, target) =>
        window === 'warmup' && target === 'naive' ? WARMING : windowStats(window, target),
    });
    const outcome = await runFor(h.ctx, 45_000);
    const { result, journal } = files(outcome);
    const [run] = result.runs;
    expect(result.status).toBe('completed');
    // The claims are judged as ever: the warning says what to make of them.
    expect(result.verdict).toBe('held');
    expect(run?.warmup).toEqual({
      ms: 30_000,
      minMs: 1_000,
      maxMs: 30_000,
      steady: false,
      reason: 'second 29: naive 57% ok, p50 1.93s, p99 2s (over 1s)',
    });
    expect(run?.warmupMs).toBe(30_000);
    expect(run?.phases.map((p) => [p.name, p.startMs, p.partial])).toEqual([
      ['baseline', 30_000, false],
      ['fault', 32_000, false],
      ['recovery', 35_000, false],
    ]);
    expect(waiting(journal)).toHaveLength(30);
    const warning =
      'the lab was not steady after 30s of warm-up (second 29: naive 57% ok, p50 1.93s, p99 2s (over 1s)): measuring anyway; its first phase may show the lab warming up rather than the experiment';
    expect(journal.filter((e) => e.type === 'warning')).toEqual([
      { type: 'warning', at: expect.any(String), message: warning },
    ]);
    expect(h.notes).toContain(`warning: ${warning}`);
    expect(journal.find((e) => e.type === 'warmup-finished')).toMatchObject({ steady: false, ms: 30_000 });
    expect(result.leftoverFaults).toEqual([]);
  });

  it('takes a shorter bound, and never ends the warm-up before its minimum', async () => {
    const h = harness(undefined, {
      timing: { ...DEFAULTS, warmupMs: 4_000, steadyTimeoutMs: 2_000 },
      stats: (window, target) =>
        window === 'warmup' && target === 'naive' ? WARMING : windowStats(window, target),
    });
    const { result } = files(await runFor(h.ctx, 15_000));
    expect(result.runs[0]?.warmup).toMatchObject({ ms: 4_000, minMs: 4_000, maxMs: 4_000, steady: false });
    // k6 is told the longest the variant can last.
    expect(h.generators.created[0]?.options.plannedDurationMs).toBe(4_000 + 6_000);
  });

  it('rolls back cleanly on Ctrl-C while it waits for a steady lab', async () => {
    const h = harness(undefined, {
      timing: DEFAULTS,
      stats: (window, target) =>
        window === 'warmup' && target === 'naive' ? WARMING : windowStats(window, target),
    });
    const running = runExperiment(h.ctx);
    await vi.advanceTimersByTimeAsync(5_500);
    expect(waiting(h.events)).toHaveLength(5);
    h.abort.abort('SIGINT');
    await vi.advanceTimersByTimeAsync(100);
    const outcome = await running;
    const { result, journal } = files(outcome);
    expect(outcome.exitCode).toBe(130);
    expect(result.status).toBe('aborted');
    expect(result.error).toBe('interrupted by SIGINT during the warm-up of variant "recovery-on"');
    expect(result.runs[0]?.phases).toEqual([]);
    expect(result.runs[0]?.warmup).toEqual({
      ms: 5_500,
      minMs: 1_000,
      maxMs: 30_000,
      steady: false,
      reason: 'the run ended during the warm-up',
    });
    expect(h.generators.created[0]?.calls).toEqual(['start warmup', 'stop cancel']);
    expect(h.target.callsTo('clearSettings')).toHaveLength(1);
    expect(h.target.settings).toBeUndefined();
    expect(result.leftoverFaults).toEqual([]);
    expect(journal.some((e) => e.type === 'warmup-finished')).toBe(false);
    // Nothing is told of the warm-up after the abort.
    const after = journal.findIndex((e) => e.type === 'rollback');
    expect(journal.slice(after).some((e) => e.type === 'warmup-waiting')).toBe(false);
    expect(journal.at(-1)).toMatchObject({ type: 'run-finished', status: 'aborted', exitCode: 130 });
  });
});

const TRUST_MODES_EXPERIMENT = `
name: trust-modes
description: a rogue client against each trust mode
load: { rate: 10, endpoint: video }
variants:
  - { name: zero, settings: { trust: zero } }
  - { name: full, settings: { trust: full } }
  - { name: lab }
phases:
  - name: rogue
    duration: 4s
    rogue: { service: coin, calls: 4 }
claims:
  - { variant: zero, service: coin, phase: rogue, expect: { rogueServed: "== 1" } }
  - { variant: full, service: coin, phase: rogue, expect: { rogueServed: "== 0" } }
`;

describe('trust modes and rogue calls', () => {
  it('overrides the trust mode of gateways and backends per variant, and records the mode each ran in', async () => {
    const h = harness(TRUST_MODES_EXPERIMENT, { target: createFakeTarget({ trust: 'half' }) });
    const outcome = await runFor(h.ctx, 30_000);
    const { result } = files(outcome);
    expect(result.error).toBeUndefined();
    expect(result.runs.map((r) => [r.variant, r.trust])).toEqual([
      ['zero', 'zero'],
      ['full', 'full'],
      ['lab', 'half'],
    ]);
    // Backends and gateways each get the override (two calls), then both are cleared.
    const applied = h.target.calls.filter((c) => c.startsWith('applySettings'));
    expect(
      applied.filter((c) => c.includes('-v0-settings') && c.includes('"trust":"zero"')).length,
    ).toBeGreaterThanOrEqual(2);
    expect(
      applied.filter((c) => c.includes('-v1-settings') && c.includes('"trust":"full"')).length,
    ).toBeGreaterThanOrEqual(2);
    expect(applied.some((c) => c.includes('-v2-settings'))).toBe(false);
    expect(h.target.settings).toBeUndefined();
  });

  it('counts the rogue calls of a phase, spread over it, and judges rogueServed', async () => {
    const h = harness(TRUST_MODES_EXPERIMENT, { target: createFakeTarget({ trust: 'half' }) });
    const outcome = await runFor(h.ctx, 30_000);
    const { result } = files(outcome);
    const rogue = (variant: string) => result.runs.find((r) => r.variant === variant)?.phases[0]?.rogue;
    expect(rogue('zero')).toEqual({ service: 'coin', calls: 4, served: 4, refused: {}, failed: {} });
    expect(rogue('full')).toEqual({
      service: 'coin',
      calls: 4,
      served: 0,
      refused: { TRUST_MISSING: 4 },
      failed: {},
    });
    expect(rogue('lab')).toMatchObject({ calls: 4, served: 0 });
    expect(result.runs[0]?.phases[0]?.services.coin?.rogueServed).toBe(1);
    expect(result.runs[1]?.phases[0]?.services.coin?.rogueServed).toBe(0);
    expect(result.claims.map((c) => [c.variant, c.metric, c.holds])).toEqual([
      ['zero', 'rogueServed', true],
      ['full', 'rogueServed', true],
    ]);
    expect(h.target.calls.filter((c) => c.startsWith('rogue coin /coins/1')).length).toBe(12);
  });

  it('refuses, before anything starts, rogue calls on a target that cannot make them', async () => {
    const target = createFakeTarget({ noRogue: true });
    const h = harness(TRUST_MODES_EXPERIMENT, { target });
    await expect(runExperiment(h.ctx)).rejects.toThrow(
      /phases\[0\]\.rogue \(phase "rogue"\): the local target cannot call a backend straight/,
    );
    expect(target.calls).toEqual([]);
  });
});

describe('a fault proxy that restarts during a run', () => {
  const PROXY_EXPERIMENT = `
name: proxy-restart
description: latency on coin while coin-1's fault proxy restarts
load: { rate: 10, endpoint: video }
phases:
  - { name: baseline, duration: 2s }
  - name: fault
    duration: 6s
    faults: [{ kind: latency, service: coin, delay: 300ms }]
  - { name: recovery, duration: 2s }
`;

  /** Runs until `at` ms, restarts coin-1's proxy there, and runs to the end. */
  async function runRestartingAt(at: number, timing: RunContext['timing'] = {}) {
    const h = harness(PROXY_EXPERIMENT, {
      target: createFakeTarget({ countsProxies: true }),
      timing: { leaseMs: 3_000, warmupMs: 1_000, ...timing },
    });
    const running = runExperiment(h.ctx);
    running.catch(() => {});
    await vi.advanceTimersByTimeAsync(at);
    const exitAt = Date.now();
    h.target.restartProxy('coin-1', exitAt);
    await vi.advanceTimersByTimeAsync(20_000 - at);
    const outcome = await running;
    return { h, outcome, exitAt, ...files(outcome) };
  }

  const phase = (result: RunResult, name: string) => result.runs[0]?.phases.find((p) => p.name === name);

  it('records its restart in the phase, that the renewal put its faults back, and warns', async () => {
    // The fault phase runs from about 3 s to 9 s; renewals come every second.
    const { h, result, journal, exitAt } = await runRestartingAt(5_500);
    const fault = phase(result, 'fault');
    const id = fault?.reapplied?.[0]?.id ?? '';
    expect(id).toMatch(/-v0-p1-f0$/);
    expect(fault?.reapplied).toEqual([
      { instance: 'coin-1', injector: 'fault-proxy', id, at: expect.any(String) },
    ]);
    const at = fault?.reapplied?.[0]?.at ?? '';
    // Put back by the first renewal after the exit.
    expect(Date.parse(at) - exitAt).toBeGreaterThan(0);
    expect(Date.parse(at) - exitAt).toBeLessThanOrEqual(1_000);
    expect(fault?.proxyRestarts).toEqual([
      {
        instance: 'coin-1',
        restarts: 1,
        lastExitAt: new Date(exitAt).toISOString(),
        faults: 'reapplied',
        reappliedAt: [at],
        note: expect.stringMatching(
          /^coin-1's fault proxy restarted and lost this run's faults on it \(a proxy keeps them in memory; its calibration figures start again too\); the lease renewal put them back at \d\d:\d\d:\d\d \(0\.\d s after its last exit\): coin-1 was without them until then$/,
        ),
      },
    ]);
    expect(phase(result, 'baseline')?.proxyRestarts).toEqual([]);
    expect(phase(result, 'recovery')?.proxyRestarts).toEqual([]);
    expect(phase(result, 'baseline')?.reapplied).toBeUndefined();
    expect(journal.filter((e) => e.type === 'fault-reapplied')).toEqual([
      {
        type: 'fault-reapplied',
        at: expect.any(String),
        variant: 'default',
        phase: 'fault',
        leases: [{ instance: 'coin-1', injector: 'fault-proxy', id }],
      },
    ]);
    expect(h.notes).toContain(
      `warning: coin-1's fault proxy had lost ${id} (its process restarted): the lease renewal put it back`,
    );
    expect(h.notes).toContain(`warning: phase "fault": ${fault?.proxyRestarts?.[0]?.note}`);
    expect(result.leftoverFaults).toEqual([]);
  });

  it('says its faults were lost for the rest of the phase when no renewal came after the restart', async () => {
    const { h, result, exitAt } = await runRestartingAt(5_500, { leaseMs: 30_000, renewEveryMs: 10_000 });
    const fault = phase(result, 'fault');
    expect(fault?.reapplied).toBeUndefined();
    expect(fault?.proxyRestarts).toEqual([
      expect.objectContaining({ instance: 'coin-1', restarts: 1, faults: 'lost', reappliedAt: [] }),
    ]);
    const note = fault?.proxyRestarts?.[0]?.note ?? '';
    expect(note).toMatch(
      /^coin-1's fault proxy restarted and lost this run's faults on it .*; they were not put back before the phase's faults were removed: coin-1 was without them from \d\d:\d\d:\d\d to the phase's end$/,
    );
    expect(note).toContain(new Date(exitAt).toTimeString().slice(0, 8));
    expect(h.notes).toContain(`warning: phase "fault": ${note}`);
  });

  it("records, without a warning, an instance's fault agent that lost its lease and had it put back", async () => {
    const yaml = PROXY_EXPERIMENT.replace(
      '{ kind: latency, service: coin, delay: 300ms }',
      '{ kind: http-error, service: vip, status: 503, percent: 50, instances: [vip-1] }',
    );
    const h = harness(yaml, { target: createFakeTarget({ countsProxies: true }) });
    const running = runExperiment(h.ctx);
    running.catch(() => {});
    await vi.advanceTimersByTimeAsync(5_500);
    // vip-1 restarted: its agent forgot the lease.
    for (const [key, lease] of h.target.leases) if (lease.instance === 'vip-1') h.target.leases.delete(key);
    await vi.advanceTimersByTimeAsync(14_500);
    const { result } = files(await running);
    expect(phase(result, 'fault')?.reapplied).toEqual([
      expect.objectContaining({ instance: 'vip-1', injector: 'fault-agent' }),
    ]);
    expect(phase(result, 'fault')?.proxyRestarts).toEqual([]);
    expect(h.notes.filter((n) => n.startsWith('warning'))).toEqual([]);
  });

  it('says so when it held no fault of the run then', async () => {
    const { h, result } = await runRestartingAt(2_000);
    const baseline = phase(result, 'baseline');
    expect(baseline?.proxyRestarts).toEqual([
      expect.objectContaining({ instance: 'coin-1', restarts: 1, faults: 'none', reappliedAt: [] }),
    ]);
    expect(baseline?.proxyRestarts?.[0]?.note).toBe(
      "coin-1's fault proxy restarted; no fault of this run was on it then (coin-1 was out of the gateways' reach until it was back)",
    );
    expect(phase(result, 'fault')?.proxyRestarts).toEqual([]);
    expect(h.notes.filter((n) => n.includes('fault proxy'))).toHaveLength(1);
  });
});
