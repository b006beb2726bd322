/**
 * An injector is a mechanism that puts faults on instances and takes them off again: the fault
 * agent inside each instance, the fault proxy in front of it, netem in a pod's sidecar, a kill.
 * Targets resolve instances and choose an injector per kind (the registry says which); the runner
 * (runner/faults.ts) owns what is common to all: all-or-nothing injection, rollback, renewal,
 * audit and clear fan-out. An injector knows how to reach its instances and nothing of runs.
 */
import type { TrustMode } from '../../services/lib/trust.ts';
import { AdminError, isUnreachable } from '../admin-client.ts';
import type { InjectorName, Params } from './kind.ts';
import type { AnyFault } from './registry.ts';

/** One fault on one instance. */
export interface AppliedFault {
  readonly fault: AnyFault;
  /** The instance id (`coin-1`) or, on Kubernetes, the pod. */
  readonly instance: string;
  readonly injector: InjectorName;
  /** The lease id on that instance. */
  readonly id: string;
  /** ISO time. */
  readonly injectedAt: string;
  /** Set when the lease was on that instance already (the same id): the injection renewed it. */
  readonly renewed?: boolean;
}

/** A lease to take off: which id on which instance (the fault, when this process applied it). */
export interface LeaseRef {
  readonly instance: string;
  readonly id: string;
  readonly fault?: AnyFault;
}

/** Something active in the lab that an audit reports. */
export interface LeftoverFault {
  readonly instance: string;
  readonly injector: InjectorName;
  readonly id: string;
  readonly kind: string;
}

/** A lease found on an instance, for `fault list` and audits. */
export interface ActiveLease extends LeftoverFault {
  readonly params: Params;
  readonly leaseMs: number;
  readonly appliedAt: number;
  /** Epoch ms; null when it never ends (a settings override without lease). */
  readonly expiresAt: number | null;
}

/** An agent's worker settings (only the fault agent has them). */
export interface InstanceSettings {
  readonly instance: string;
  readonly service: string;
  readonly workerRecovery: boolean;
  /** The trust mode in force, for a process that has one. */
  readonly trust?: TrustMode;
  readonly overridden: boolean;
  /** What the override in force sets. */
  readonly override?: { readonly workerRecovery?: boolean; readonly trust?: TrustMode };
  readonly expiresAt: number | null;
  /** The override's id when this run set it (audits name it). */
  readonly id?: string;
}

export interface Listing {
  readonly leases: readonly ActiveLease[];
  readonly settings: readonly InstanceSettings[];
  /** Instances that could not be asked; `error` says why. */
  readonly failed: readonly { readonly instance: string; readonly error: Error }[];
}

export interface FaultInjector {
  readonly name: InjectorName;
  /**
   * Puts each fault on its instance (a renewal when that id is on it already): one outcome per
   * applied fault, in order — `created` false for a renewal. It does not undo what it did when some
   * fail: the caller does (runner/faults.ts), with `remove` of the created ones.
   */
  apply(
    applied: readonly AppliedFault[],
    leaseMs: number,
  ): Promise<PromiseSettledResult<{ created: boolean }>[]>;
  /**
   * Extends the leases; brings one back on an instance that lost it (a restarted process), and
   * resolves with those it brought back (the instance took the lease as new). An instance that
   * cannot be reached now is left for the next renewal; anything else throws.
   */
  renew(applied: readonly AppliedFault[], leaseMs: number): Promise<readonly AppliedFault[]>;
  /** Takes the faults off now; an unreachable instance lost them with its process, or will at its lease's end. */
  remove(leases: readonly LeaseRef[]): Promise<void>;
  /**
   * What the faulty instances did during the fault, under the keys the kind's `configured` uses
   * (`{ addedLatencyMs: 401.3 }`); called right after `remove`. Absent: nothing is observed.
   */
  observe?(applied: readonly AppliedFault[]): Promise<Params>;
  /** Every lease on its instances (or on those of `scope`); what could not be asked is in `failed`. */
  list(scope?: readonly string[]): Promise<Listing>;
  /** Removes every fault on its instances (or those of `scope`), whoever applied it; how many. */
  clear(scope?: readonly string[]): Promise<number>;
}

/** One error for several failed calls, naming the first. */
export function combined(what: string, failed: readonly { error: Error }[]): Error {
  const first = failed[0]?.error;
  const message = first?.message ?? '';
  // The first error stays the cause, so that a caller can still ask what it was (an AdminError's reason).
  return new Error(
    failed.length === 1 ? `${what}: ${message}` : `${what}: ${failed.length} calls failed; first: ${message}`,
    first ? { cause: first } : {},
  );
}

/** Throws for refusals; an unreachable instance (down, restarting) is let go: see the callers. */
export function refusals(what: string, failed: readonly { error: Error }[]): void {
  const refused = failed.filter((f) => !isUnreachable(f.error));
  if (refused.length > 0) throw combined(what, refused);
}

/** The rejected outcomes of `Promise.allSettled`, as `{ error }`. */
export function rejections(results: readonly PromiseSettledResult<unknown>[]): { error: Error }[] {
  return results.flatMap((r) => (r.status === 'rejected' ? [{ error: asError(r.reason) }] : []));
}

export function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/** `id@instance`: one applied fault, as a key. */
export function keyOf(a: Pick<AppliedFault, 'id' | 'instance'>): string {
  return `${a.id}@${a.instance}`;
}

export { AdminError };
