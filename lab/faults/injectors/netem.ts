/**
 * netem in a pod's fault sidecar (services/fault-sidecar/): latency and loss as `tc qdisc … netem`
 * on the pod's interface, under a lease the sidecar keeps. One qdisc holds all of a pod's netem
 * faults, so the injector keeps, per pod, the faults of this run there and sets them together.
 */
import {
  type ActiveLease,
  type AppliedFault,
  combined,
  type FaultInjector,
  type LeaseRef,
  type Listing,
  rejections,
} from '../injector.ts';
import type { Params } from '../kind.ts';
import { faultKind, paramsOf } from '../registry.ts';

/** `fault-sidecar status`, as one JSON line. */
export interface SidecarStatus {
  readonly dev: string;
  readonly lease: {
    readonly expiresAt: number;
    readonly remainingSeconds: number;
    readonly netem: string;
  } | null;
  readonly netemQdisc: boolean;
  readonly qdisc: string;
}

/** A sidecar command that failed, in a pod; `gone` when the pod no longer exists. */
export class SidecarError extends Error {
  constructor(
    readonly pod: string,
    message: string,
    readonly exitCode?: number,
    readonly gone = false,
  ) {
    super(message);
    this.name = 'SidecarError';
  }
}

const isGone = (err: unknown) => err instanceof SidecarError && err.gone;

/** The netem parameters of a fault, as the sidecar passes them to `tc qdisc replace … netem`. */
export function netemArgs(fault: AppliedFault['fault']): string[] | undefined {
  const netem = faultKind(fault.kind).netem?.(paramsOf(fault));
  return netem ? [...netem] : undefined;
}

/** The sidecar's `--for`: whole seconds, rounded up so that the lease is never shorter than asked. */
export function leaseArg(leaseMs: number): string {
  return `${Math.max(1, Math.ceil(leaseMs / 1000))}s`;
}

/** What to make of a failing `tc` the sidecar reports: the one failure users cannot guess. */
export function netemHint(stderr: string): string {
  return /qdisc kind is unknown|qdisc not found/i.test(stderr)
    ? ": the kernel of the cluster's node has no sch_netem (kind nodes share the host's kernel), so latency and loss cannot be injected; on Linux run `sudo modprobe sch_netem` on the host; WSL2 and some VMs lack the module altogether (http-error and kill experiments still work there)"
    : '';
}

export interface NetemInjectorOptions {
  /** Runs `fault-sidecar <args>` in the pod; throws a SidecarError when it fails. Resolves with its stdout. */
  readonly sidecar: (pod: string, args: readonly string[]) => Promise<string>;
  /** The pods that may carry a qdisc now, for listing and clearing. */
  readonly pods: () => Promise<readonly string[]>;
  /**
   * Calibration, which netem cannot do itself (it keeps no per-packet figures): called before a
   * fault goes on, and to observe it. @default none: nothing observed
   */
  readonly calibration?: {
    before(applied: readonly AppliedFault[]): Promise<void>;
    observe(applied: readonly AppliedFault[]): Promise<Params>;
  };
}

export function createNetemInjector(options: NetemInjectorOptions): FaultInjector {
  /** Per pod: the netem faults of this run there, by lease id. */
  const onPod = new Map<string, Map<string, readonly string[]>>();
  /** The lease of the last injection or renewal: what a pod's remaining faults keep when one is removed. */
  let lastLeaseMs = 10_000;

  /** Puts the pod's netem faults (all of them: one qdisc holds them) on a lease, or clears it when none is left. */
  async function set(pod: string, faults: ReadonlyMap<string, readonly string[]>, leaseMs: number) {
    const args = [...faults.values()].flat();
    if (args.length === 0) await options.sidecar(pod, ['clear']);
    else await options.sidecar(pod, ['apply', '--for', leaseArg(leaseMs), ...args]);
    if (faults.size === 0) onPod.delete(pod);
    else onPod.set(pod, new Map(faults));
  }

  /** Takes `applied` off their pods' qdiscs: a pod's other faults stay, on the lease they had. */
  async function drop(leases: readonly LeaseRef[]) {
    const byPod = new Map<string, LeaseRef[]>();
    for (const a of leases) byPod.set(a.instance, [...(byPod.get(a.instance) ?? []), a]);
    const results = await Promise.allSettled(
      [...byPod].map(async ([pod, mine]) => {
        const rest = new Map(onPod.get(pod) ?? []);
        for (const a of mine) rest.delete(a.id);
        try {
          await set(pod, rest, lastLeaseMs);
        } catch (err) {
          // A pod that is gone took its qdisc with it.
          if (isGone(err)) onPod.delete(pod);
          else throw err;
        }
      }),
    );
    const failed = rejections(results);
    if (failed.length > 0) throw combined('removing the netem faults', failed);
  }

  async function inScope(scope?: readonly string[]) {
    const all = await options.pods();
    return scope ? all.filter((p) => scope.includes(p)) : all;
  }

  return {
    name: 'tc-netem',

    async apply(applied, leaseMs) {
      lastLeaseMs = leaseMs;
      await options.calibration?.before(applied);
      return Promise.allSettled(
        applied.map(async (a) => {
          const args = netemArgs(a.fault);
          if (!args) throw new Error(`${a.fault.kind} is not a netem fault`);
          const created = !onPod.get(a.instance)?.has(a.id);
          await set(a.instance, new Map(onPod.get(a.instance) ?? []).set(a.id, args), leaseMs);
          return { created };
        }),
      );
    },

    /**
     * A sidecar with nothing to renew (exit 3: the lease ran out, say after renewals that failed) gets
     * the faults applied again (those are what it resolves with); a pod that is gone took its faults along.
     */
    async renew(applied, leaseMs) {
      lastLeaseMs = leaseMs;
      const pods = [...new Set(applied.map((a) => a.instance))];
      const results = await Promise.allSettled(
        pods.map(async (pod): Promise<readonly AppliedFault[]> => {
          try {
            await options.sidecar(pod, ['renew', '--for', leaseArg(leaseMs)]);
            return [];
          } catch (err) {
            if (isGone(err)) return [];
            if (!(err instanceof SidecarError && err.exitCode === 3)) throw err;
            await set(pod, onPod.get(pod) ?? new Map(), leaseMs);
            return applied.filter((a) => a.instance === pod);
          }
        }),
      );
      const failed = rejections(results);
      if (failed.length > 0) throw combined('renewing the fault leases', failed);
      return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    },

    remove: drop,

    async observe(applied) {
      return (await options.calibration?.observe(applied)) ?? {};
    },

    async list(scope) {
      const pods = await inScope(scope);
      const results = await Promise.allSettled(pods.map((pod) => options.sidecar(pod, ['status'])));
      const leases: ActiveLease[] = [];
      const failed: { instance: string; error: Error }[] = [];
      results.forEach((r, i) => {
        const pod = pods[i] as string;
        if (r.status === 'rejected') {
          if (!isGone(r.reason)) failed.push({ instance: pod, error: r.reason as Error });
          return;
        }
        try {
          const lease = leaseOf(pod, r.value, [...(onPod.get(pod)?.keys() ?? [])]);
          if (lease) leases.push(lease);
        } catch (err) {
          failed.push({ instance: pod, error: err as Error });
        }
      });
      return { leases, settings: [], failed } satisfies Listing;
    },

    async clear(scope) {
      const pods = await inScope(scope);
      const results = await Promise.allSettled(pods.map((pod) => options.sidecar(pod, ['clear'])));
      for (const pod of pods) onPod.delete(pod);
      const failed = results.flatMap((r) =>
        r.status === 'rejected' && !isGone(r.reason) ? [{ error: r.reason as Error }] : [],
      );
      if (failed.length > 0) throw combined('clearing every fault', failed);
      return results.filter((r) => r.status === 'fulfilled').length;
    },
  };
}

/** A pod's qdisc as a lease, from `fault-sidecar status`; undefined when it has none. */
function leaseOf(pod: string, stdout: string, ids: readonly string[]): ActiveLease | undefined {
  let status: SidecarStatus;
  try {
    status = JSON.parse(stdout) as SidecarStatus;
  } catch {
    throw new SidecarError(pod, `pod ${pod}: fault-sidecar status printed no JSON: ${oneLine(stdout)}`);
  }
  if (!status.netemQdisc && status.lease === null) return undefined;
  const netem = status.lease?.netem ?? status.qdisc;
  return {
    instance: pod,
    injector: 'tc-netem',
    id: ids.join(', ') || 'tc-netem',
    kind: `netem (${netem})`,
    params: {},
    leaseMs: 0,
    appliedAt: 0,
    expiresAt: status.lease ? status.lease.expiresAt * 1000 : null,
  };
}

export function oneLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).join(' / ');
}
