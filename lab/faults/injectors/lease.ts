/**
 * What the fault agent and the fault proxy share, as their admin APIs share one lease router
 * (services/lib/lease-router.ts): a fault is a lease put by id, renewed by putting it again, and
 * removed by id; an instance that cannot be reached now is let go (it lost its leases with its
 * process, or will when they run out), a refusal is an error.
 */
import {
  type Target as AdminTarget,
  type AgentClient,
  type FaultLease,
  onEvery,
  type ProxyClient,
} from '../../admin-client.ts';
import { type ActiveLease, type AppliedFault, type LeaseRef, refusals } from '../injector.ts';
import type { InjectorName, Params } from '../kind.ts';
import { faultKind, paramsOf } from '../registry.ts';

/** The lease body an agent or a proxy takes for a fault. */
export function leaseBody(
  fault: AppliedFault['fault'],
  leaseMs: number,
): { kind: string; params: Params; leaseMs: number } {
  const lease = faultKind(fault.kind).lease?.(paramsOf(fault));
  if (!lease) throw new Error(`${fault.kind} is not a lease of the fault agent or the fault proxy`);
  return { ...lease, params: { ...lease.params }, leaseMs };
}

/** `call` on every lease's instance at once; refusals throw as one error saying `what`. */
async function onEachInstance<L extends LeaseRef, T>(
  what: string,
  leases: readonly L[],
  call: (lease: L) => Promise<T>,
): Promise<{ lease: L; value: T }[]> {
  const { ok, failed } = await onEvery(
    leases.map((lease) => ({ id: lease.instance, url: '', lease })),
    (t) => call(t.lease),
  );
  refusals(what, failed);
  return ok.map(({ target, value }) => ({ lease: target.lease, value }));
}

/** Renewal and removal of leases through `client`, at the admin endpoint `reach` gives an instance. */
export function leaseCalls(
  client: () => AgentClient | ProxyClient,
  reach: (instance: string) => Promise<AdminTarget>,
) {
  return {
    /** A renewal answered 201 (created, not renewed) found the lease gone: its process had restarted. */
    async renew(applied: readonly AppliedFault[], leaseMs: number): Promise<readonly AppliedFault[]> {
      const answers = await onEachInstance('renewing the fault leases', applied, async (a) =>
        client().put(await reach(a.instance), a.id, leaseBody(a.fault, leaseMs)),
      );
      return answers.filter(({ value }) => value.created).map(({ lease }) => lease);
    },
    async remove(leases: readonly LeaseRef[]): Promise<void> {
      await onEachInstance('removing the faults', leases, async (l) =>
        client().remove(await reach(l.instance), l.id),
      );
    },
  };
}

/** An instance's leases as an agent's or a proxy's listing gives them. */
export function leasesOf(
  instance: string,
  injector: InjectorName,
  faults: readonly FaultLease[],
): ActiveLease[] {
  return faults.map((f) => ({
    instance,
    injector,
    id: f.id,
    kind: f.kind,
    params: f.params,
    leaseMs: f.leaseMs,
    appliedAt: f.appliedAt,
    expiresAt: f.expiresAt,
  }));
}
