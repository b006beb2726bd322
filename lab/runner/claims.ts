/**
 * Judging an experiment's claims against what its run measured. A claim without `variant` is judged once
 * per variant. A claim gets no verdict (holds: null, with the reason) when its numbers cannot be trusted
 * or do not exist: the run did not complete, the phase was cut short, the load generator fell behind in
 * it, or nothing was measured.
 */
import type { Claim, Experiment } from './experiment.ts';
import { claimHolds } from './experiment.ts';
import type { ClaimResult, PhaseResult, RunStatus, VariantRun } from './result.ts';

export function evaluateClaims(
  experiment: Pick<Experiment, 'claims' | 'variants'>,
  runs: readonly VariantRun[],
  status: RunStatus,
): ClaimResult[] {
  return experiment.claims.flatMap((claim) => {
    const variants = claim.variant === undefined ? experiment.variants.map((v) => v.name) : [claim.variant];
    return variants.map((variant) => {
      const phase = runs.find((r) => r.variant === variant)?.phases.find((p) => p.name === claim.phase);
      return judge(claim, variant, phase, status);
    });
  });
}

function judge(
  claim: Claim,
  variant: string,
  phase: PhaseResult | undefined,
  status: RunStatus,
): ClaimResult {
  const subject =
    claim.subject === 'gateway'
      ? { gateway: claim.gateway }
      : { service: claim.service as ClaimResult['service'] };
  const actual = phase ? measured(claim, phase) : null;
  const row = {
    variant,
    phase: claim.phase,
    ...subject,
    metric: claim.metric,
    expected: claim.expected,
    actual,
  };
  const noVerdict = (reason: string): ClaimResult => ({ ...row, holds: null, reason });

  if (status !== 'completed') return noVerdict(`the run ${status}`);
  if (!phase) return noVerdict('the phase did not run');
  if (phase.partial) return noVerdict('the phase was cut short');
  const behind = Object.entries(phase.gateways)
    .filter(([, stats]) => stats?.fellBehind)
    .map(([gateway]) => gateway);
  if (behind.length > 0) {
    return noVerdict(`the load generator fell behind in this phase (${behind.join(', ')})`);
  }
  if (actual === null) {
    return noVerdict(
      claim.subject === 'gateway' ? `no request to ${claim.gateway} had an outcome` : 'no counters were read',
    );
  }
  return { ...row, holds: claimHolds(claim, actual) };
}

/** The claim's metric in the phase, in the claim's unit (shares 0..1, milliseconds, counts). */
export function measured(claim: Claim, phase: PhaseResult): number | null {
  if (claim.subject === 'service') return phase.services[claim.service]?.[claim.metric] ?? null;
  const stats = phase.gateways[claim.gateway];
  if (!stats) return null;
  switch (claim.metric) {
    case 'successRate':
      return stats.successRate;
    case 'degradedRate':
      return stats.degradedRate;
    case 'achievedRps':
      return stats.achievedRps;
    case 'p50':
    case 'p95':
    case 'p99':
    case 'max':
      return stats.latencyMs?.[claim.metric] ?? null;
  }
}
