import { describe, expect, it } from 'vitest';
import { evaluateClaims } from './claims.ts';
import { parseExperiment } from './experiment.ts';
import { fakeTargetStats } from './fake-target.ts';
import {
  exitCodeOf,
  type GatewayPhaseStats,
  gatewayPhaseStats,
  generatorHealth,
  type PhaseResult,
  type VariantRun,
  verdictOf,
} from './result.ts';

const experiment = parseExperiment(
  `
name: claims
description: claims on gateways and services, with and without a variant
load: { rate: 10, endpoint: video }
variants:
  - { name: recovery-off, settings: { workerRecovery: false } }
  - { name: recovery-on, settings: { workerRecovery: true } }
phases:
  - name: fault
    duration: 5s
    faults: [{ kind: worker-panic, service: like, percent: 20 }]
claims:
  - { gateway: resilient, phase: fault, expect: { successRate: ">= 0.99", p99: "< 350ms" } }
  - { service: like, phase: fault, variant: recovery-off, expect: { restarts: ">= 1" } }
`,
  'claims.yaml',
);

function gateway(overrides: Partial<Parameters<typeof fakeTargetStats>[0]> = {}): GatewayPhaseStats {
  return gatewayPhaseStats(fakeTargetStats(overrides));
}

function run(variant: string, phase: Partial<PhaseResult> = {}): VariantRun {
  return {
    variant,
    settings: {},
    warmupMs: 1000,
    warmup: { ms: 1000, minMs: 1000, maxMs: 30_000, steady: true },
    phases: [
      {
        name: 'fault',
        startMs: 1000,
        durationMs: 5000,
        plannedDurationMs: 5000,
        partial: false,
        faults: [],
        gateways: { resilient: gateway() },
        services: { like: { restarts: 2, panicsRecovered: 0 } },
        ...phase,
      },
    ],
    timeseries: [],
  };
}

describe('evaluateClaims', () => {
  it('judges a claim without variant once per variant, and a service claim on its counters', () => {
    const runs = [
      run('recovery-off', { gateways: { resilient: gateway({ successRate: 0.9 }) } }),
      run('recovery-on'),
    ];
    const claims = evaluateClaims(experiment, runs, 'completed');
    expect(claims.map((c) => [c.variant, c.gateway ?? c.service, c.metric, c.actual, c.holds])).toEqual([
      ['recovery-off', 'resilient', 'successRate', 0.9, false],
      ['recovery-on', 'resilient', 'successRate', 1, true],
      ['recovery-off', 'resilient', 'p99', 30, true],
      ['recovery-on', 'resilient', 'p99', 30, true],
      ['recovery-off', 'like', 'restarts', 2, true],
    ]);
    expect(verdictOf('completed', generatorHealth(runs), claims)).toEqual({
      verdict: 'violated',
      verdictReason: '1 of 5 claims did not hold',
    });
  });

  it('gives no verdict where the generator fell behind, the phase was cut short or nothing was measured', () => {
    const runs = [
      run('recovery-off', { gateways: { resilient: gateway({ fellBehind: true, dropped: 3, sent: 97 }) } }),
      run('recovery-on', { partial: true }),
    ];
    const claims = evaluateClaims(experiment, runs, 'completed');
    expect(claims.map((c) => c.holds)).toEqual([null, null, null, null, null]);
    expect(claims[0]?.reason).toBe('the load generator fell behind in this phase (resilient)');
    expect(claims[1]?.reason).toBe('the phase was cut short');
    const generator = generatorHealth(runs);
    expect(generator).toEqual({
      fellBehind: true,
      reason:
        'the load generator fell behind (recovery-off/fault: resilient 3 of 100 sends dropped, 0% late)',
    });
    expect(verdictOf('completed', generator, claims).verdict).toBe('no-verdict');

    const empty = evaluateClaims(
      experiment,
      [
        run('recovery-off', {
          gateways: { resilient: gateway({ requests: 0, successRate: null, latencyMs: null }) },
        }),
      ],
      'completed',
    );
    expect(empty.map((c) => [c.variant, c.holds, c.reason])).toEqual([
      ['recovery-off', null, 'no request to resilient had an outcome'],
      ['recovery-on', null, 'the phase did not run'],
      ['recovery-off', null, 'no request to resilient had an outcome'],
      ['recovery-on', null, 'the phase did not run'],
      ['recovery-off', true, undefined],
    ]);
    expect(verdictOf('completed', generatorHealth([]), empty).verdictReason).toMatch(
      /^4 claims could not be judged/,
    );
  });

  it('judges nothing when the run did not complete', () => {
    const claims = evaluateClaims(experiment, [run('recovery-off'), run('recovery-on')], 'aborted');
    expect(claims.every((c) => c.holds === null && c.reason === 'the run aborted')).toBe(true);
    expect(verdictOf('aborted', generatorHealth([]), claims)).toEqual({
      verdict: 'no-verdict',
      verdictReason: 'the run aborted: its claims are not judged',
    });
  });
});

describe('exitCodeOf', () => {
  it('is 0 only for a completed run whose claims held', () => {
    expect(exitCodeOf({ status: 'completed', verdict: 'held' })).toBe(0);
    expect(exitCodeOf({ status: 'completed', verdict: 'violated' })).toBe(1);
    expect(exitCodeOf({ status: 'completed', verdict: 'no-verdict' })).toBe(1);
    expect(exitCodeOf({ status: 'failed', verdict: 'no-verdict' })).toBe(1);
    expect(exitCodeOf({ status: 'aborted', verdict: 'no-verdict' })).toBe(130);
  });
});
