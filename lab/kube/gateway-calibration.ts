/**
 * Calibration of latency on Kubernetes when netem applies it (netem keeps no per-packet figures):
 * what the gateways without deadlines saw of the dependency during the fault, against the window
 * before it. The kube target takes the gateways' tallies at each phase's end (counters()) and tells
 * this which services have faults on them, so that only a clean window serves as a baseline.
 */
import { BACKENDS, type BackendName, type Strategy } from '../../services/topology.ts';
import type { AppliedFault } from '../faults/injector.ts';
import type { Params } from '../faults/kind.ts';
import { parsePromText, type Sample, sumOf } from '../prom-text.ts';

/** The time gateways spent calling one dependency, as sums so that windows can be subtracted. */
export interface DependencyTally {
  readonly sumMs: number;
  readonly count: number;
}

/**
 * The gateways without deadlines (naive, parallel) wait for every answer, so the time they
 * spent on a dependency is the latency it had, network included: what calibration wants.
 * The resilient gateway's calls are cut at its deadlines and would hide the added latency.
 */
export const CALIBRATING_GATEWAYS: readonly Strategy[] = ['naive', 'parallel'];

export function dependencyTallies(samples: readonly Sample[]): Record<BackendName, DependencyTally> {
  return Object.fromEntries(
    BACKENDS.map((service) => {
      const mine = (l: Readonly<Record<string, string>>) => l.dependency === service;
      return [
        service,
        {
          sumMs: sumOf(samples, 'gateway_dependency_duration_seconds_sum', mine) * 1000,
          count: sumOf(samples, 'gateway_dependency_duration_seconds_count', mine),
        },
      ];
    }),
  ) as Record<BackendName, DependencyTally>;
}

/**
 * Calibration of latency from the gateways' side: the mean time a call to the dependency took
 * during the fault, less its mean over the baseline window before it.
 */
export function observedAddedLatency(
  fault: { readonly base: DependencyTally; readonly now: DependencyTally },
  baseline: { readonly from: DependencyTally; readonly to: DependencyTally },
): Record<string, number> {
  const count = fault.now.count - fault.base.count;
  const baselineCount = baseline.to.count - baseline.from.count;
  if (count <= 0 || baselineCount <= 0) return { samples: Math.max(0, count) };
  const during = (fault.now.sumMs - fault.base.sumMs) / count;
  const before = (baseline.to.sumMs - baseline.from.sumMs) / baselineCount;
  return { addedLatencyMs: Math.round((during - before) * 100) / 100, samples: count };
}

export class GatewayCalibration {
  readonly #gateways: () => Readonly<Record<Strategy, string>> | undefined;
  /** The gateways' tallies at the last two phase ends: the window before a fault. */
  #tallies: (Record<BackendName, DependencyTally> | undefined)[] = [];
  #talliesTaken = 0;
  /**
   * Per service: the faults on it now, and how many tallies had been taken when the last one ended
   * (a kill ends at once): a window with a fault is no baseline.
   */
  readonly #faultsOn = new Map<BackendName, { active: number; endedAt: number }>();
  /** Per latency fault id: the gateways' tally at injection and the baseline window before it. */
  readonly #latencyBase = new Map<
    string,
    { service: BackendName; base: DependencyTally; baseline: { from: DependencyTally; to: DependencyTally } }
  >();

  constructor(gateways: () => Readonly<Record<Strategy, string>> | undefined) {
    this.#gateways = gateways;
  }

  /** At each phase's end (the runner reads counters then): the gateways' figures, kept two deep. */
  async phaseEnded(): Promise<void> {
    this.#tallies = [...this.#tallies, await this.tallies()].slice(-2);
    this.#talliesTaken++;
  }

  faultStarted(service: BackendName): void {
    const on = this.#faultsOn.get(service) ?? { active: 0, endedAt: -1 };
    this.#faultsOn.set(service, { ...on, active: on.active + 1 });
  }

  faultEnded(service: BackendName, faults: number): void {
    const on = this.#faultsOn.get(service) ?? { active: faults, endedAt: -1 };
    this.#faultsOn.set(service, { active: Math.max(0, on.active - faults), endedAt: this.#talliesTaken });
  }

  allEnded(): void {
    for (const service of this.#faultsOn.keys()) this.faultEnded(service, Number.POSITIVE_INFINITY);
  }

  /**
   * A latency fault is calibrated when it is on every pod of its service (else the gateways'
   * calls mix slow and fast pods) and the window before it had no latency or loss fault on
   * that service: the figures then compare like with like.
   */
  async before(applied: readonly AppliedFault[], everyPod: readonly string[]): Promise<void> {
    const first = applied[0];
    if (first?.fault.kind !== 'latency' || first.fault.service === 'gateway') return;
    const service = first.fault.service;
    const pods = applied.map((a) => a.instance);
    const [from, to] = this.#tallies;
    const on = this.#faultsOn.get(service);
    const clean = !on || (on.active === 0 && on.endedAt <= this.#talliesTaken - 2);
    if (!from || !to || !clean || everyPod.some((p) => !pods.includes(p))) return;
    const now = await this.tallies();
    if (!now) return;
    this.#latencyBase.set(first.id, {
      service,
      base: now[service],
      baseline: { from: from[service], to: to[service] },
    });
  }

  async observe(applied: readonly AppliedFault[]): Promise<Params> {
    const first = applied[0];
    const remembered = first && this.#latencyBase.get(first.id);
    if (!first || !remembered) return {};
    this.#latencyBase.delete(first.id);
    const now = await this.tallies();
    if (!now) return {};
    return observedAddedLatency({ base: remembered.base, now: now[remembered.service] }, remembered.baseline);
  }

  forget(): void {
    this.#latencyBase.clear();
  }

  /** Both gateways' tallies summed; undefined when one cannot be read (the figure is then not given). */
  async tallies(): Promise<Record<BackendName, DependencyTally> | undefined> {
    const gateways = this.#gateways();
    if (!gateways) return undefined;
    try {
      const texts = await Promise.all(
        CALIBRATING_GATEWAYS.map(async (g) => {
          const res = await fetch(`${gateways[g]}/metrics`, { signal: AbortSignal.timeout(3_000) });
          if (!res.ok) throw new Error(`${res.status}`);
          return res.text();
        }),
      );
      return dependencyTallies(texts.flatMap((t) => parsePromText(t)));
    } catch {
      return undefined;
    }
  }
}
