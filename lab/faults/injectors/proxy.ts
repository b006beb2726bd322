/**
 * The fault proxy in front of every backend instance (services/fault-proxy/): latency, loss and
 * reset as leases, and its statistics window for calibration. A target says where each instance's
 * proxy takes admin calls.
 */
import { type Target as AdminTarget, onEvery, ProxyClient } from '../../admin-client.ts';
import { combined, type FaultInjector, keyOf, type LeaseRef, type Listing, refusals } from '../injector.ts';
import { observedLatency, observedLoss, type ProxyTally, tallyOf, ZERO_TALLY } from '../readings.ts';
import { leaseBody, leaseCalls, leasesOf } from './lease.ts';

export interface ProxyInjectorOptions {
  readonly token: () => string;
  /** Every fault proxy now: the instance it fronts, and its admin endpoint. */
  readonly proxies: () => Promise<readonly { readonly instance: string; readonly admin: AdminTarget }[]>;
}

export function createProxyInjector(options: ProxyInjectorOptions): FaultInjector {
  const client = () => new ProxyClient(options.token());
  /** Per proxy (by the instance it fronts): the applied faults of this run on it now. */
  const onProxy = new Map<string, Set<string>>();
  /** Per applied fault: the proxy's figures at injection, to subtract. */
  const base = new Map<string, ProxyTally>();

  async function adminOf(instance: string): Promise<AdminTarget> {
    const found = (await options.proxies()).find((p) => p.instance === instance);
    if (!found) throw new Error(`no fault proxy in front of ${instance}`);
    return found.admin;
  }

  async function inScope(scope?: readonly string[]) {
    const all = await options.proxies();
    return scope ? all.filter((p) => scope.includes(p.instance)) : all;
  }

  const calls = leaseCalls(client, adminOf);

  function forget(leases: readonly LeaseRef[]): void {
    for (const a of leases) onProxy.get(a.instance)?.delete(keyOf(a));
  }

  return {
    name: 'fault-proxy',

    async apply(applied, leaseMs) {
      const proxies = client();
      return Promise.allSettled(
        applied.map(async (a) => {
          const admin = await adminOf(a.instance);
          // A proxy's statistics window starts afresh at the injection, unless another fault of
          // this run is on that proxy: then its figures so far are the baseline to subtract.
          const others = onProxy.get(a.instance)?.size ?? 0;
          let tally = ZERO_TALLY;
          if (others === 0) await proxies.takeStats(admin);
          else tally = tallyOf(await proxies.stats(admin));
          const { created } = await proxies.put(admin, a.id, leaseBody(a.fault, leaseMs));
          base.set(keyOf(a), tally);
          onProxy.set(a.instance, (onProxy.get(a.instance) ?? new Set()).add(keyOf(a)));
          return { created };
        }),
      );
    },

    renew: calls.renew,

    async remove(leases) {
      try {
        await calls.remove(leases);
      } finally {
        forget(leases);
      }
    },

    async observe(applied) {
      const proxies = client();
      const { ok, failed } = await onEvery(
        applied.map((a) => ({ id: a.instance, url: '', key: keyOf(a) })),
        async (t) => proxies.stats(await adminOf(t.id)),
      );
      const kind = applied[0]?.fault.kind;
      if (failed.length > 0) throw combined(`observing ${kind}`, failed);
      const windows = ok.map((o) => ({ now: o.value, base: base.get(o.target.key) ?? ZERO_TALLY }));
      for (const a of applied) base.delete(keyOf(a));
      return kind === 'latency' ? observedLatency(windows) : kind === 'loss' ? observedLoss(windows) : {};
    },

    async list(scope) {
      const proxies = client();
      const views = await onEvery(
        (await inScope(scope)).map((p) => ({ ...p.admin, instance: p.instance })),
        (t) => proxies.view(t),
      );
      const leases = views.ok.flatMap(({ target, value }) =>
        leasesOf(target.instance, 'fault-proxy', value.faults),
      );
      return {
        leases,
        settings: [],
        failed: views.failed.map((f) => ({ instance: f.target.instance, error: f.error })),
      } satisfies Listing;
    },

    async clear(scope) {
      const proxies = client();
      const { ok, failed } = await onEvery(
        (await inScope(scope)).map((p) => ({ ...p.admin, instance: p.instance })),
        (t) => proxies.clear(t),
      );
      for (const { target } of ok) onProxy.delete(target.instance);
      refusals('clearing every fault', failed);
      return ok.reduce((n, o) => n + o.value.removed, 0);
    },
  };
}
