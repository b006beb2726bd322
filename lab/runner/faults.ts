/**
 * Faults through a target, done once for every target: a fault goes on every instance it names or
 * on none (what went on is taken off again when one fails), leases are renewed and removed by the
 * injector that applied them, and audits and clears fan out over every injector the target has.
 * The runner (run.ts) and `chaos-lab fault` (commands/fault.ts) both act through it.
 */
import { isUnreachable } from '../admin-client.ts';
import {
  type ActiveLease,
  type AppliedFault,
  combined,
  type FaultInjector,
  type InstanceSettings,
  type LeftoverFault,
  rejections,
} from '../faults/injector.ts';
import { describeSettings } from '../faults/injectors/agent.ts';
import type { Params } from '../faults/kind.ts';
import { type AnyFault, injectorFor } from '../faults/registry.ts';
import type { VariantSettings } from './experiment.ts';
import type { Target } from './target.ts';

export interface Faults {
  /** Puts `fault` on its instances as lease `id`, all or none; `kill` is instantaneous. */
  inject(fault: AnyFault, id: string, leaseMs: number): Promise<AppliedFault[]>;
  /**
   * Extends the leases (the runner calls it every leaseMs/3; never for `kill`); resolves with those an
   * instance had lost (its process restarted) and took again as new.
   */
  renew(applied: readonly AppliedFault[], leaseMs: number): Promise<readonly AppliedFault[]>;
  /** Removes the leases now (`kill` has nothing to remove). */
  remove(applied: readonly AppliedFault[]): Promise<void>;
  /** What the faulty instances did during the fault, for calibration (see calibration.ts). */
  observe(applied: readonly AppliedFault[]): Promise<Params>;
  /** Every fault or settings override still active anywhere in the lab. */
  audit(): Promise<LeftoverFault[]>;
  /** Everything active on the instances of `scope` (all when undefined), for `fault list`. */
  list(scope?: readonly string[]): Promise<ListedFaults>;
  /** Removes the leases of id `id` on the instances of `scope` (all when undefined); the instances it was on. */
  removeById(id: string, scope?: readonly string[]): Promise<string[]>;
  /** Removes everything the lab has (or the instances of `scope` have), whoever applied it; how many. */
  clearAll(scope?: readonly string[]): Promise<number>;
  /**
   * Applies variant settings as leases: workerRecovery on every backend instance, trust on
   * every backend and gateway instance; again with `id` renews.
   */
  applySettings(settings: VariantSettings, leaseMs: number, id: string): Promise<void>;
  clearSettings(): Promise<void>;
}

export interface ListedFaults {
  readonly leases: readonly ActiveLease[];
  readonly settings: readonly InstanceSettings[];
  readonly failed: readonly { readonly instance: string; readonly error: Error }[];
}

/** An instance restarting cannot answer for a second or two: an audit asks it again, this often. */
const AUDIT_ATTEMPTS = 4;
const AUDIT_PAUSE_MS = 1_000;

export function faultsOf(
  target: Target,
  options: { readonly auditPauseMs?: number; readonly now?: () => number } = {},
): Faults {
  const pauseMs = options.auditPauseMs ?? AUDIT_PAUSE_MS;
  const now = options.now ?? Date.now;
  /** The injector for a fault: the one it asked for, else the target's first of its kind's. */
  function injectorOf(fault: AnyFault): FaultInjector {
    const why = target.unsupported(fault);
    const injector = why === undefined ? injectorFor(target.injectors(), fault) : undefined;
    if (!injector) throw new Error(why ?? `the ${target.name} target cannot inject ${fault.kind}`);
    return injector;
  }

  /** The injector that applied a fault (it is named in the applied fault). */
  function injectorThat(applied: AppliedFault): FaultInjector {
    return target.injectors().find((i) => i.name === applied.injector) ?? injectorOf(applied.fault);
  }

  /** The applied faults by the injector that applied them. */
  function byInjector(applied: readonly AppliedFault[]): Map<FaultInjector, AppliedFault[]> {
    const groups = new Map<FaultInjector, AppliedFault[]>();
    for (const a of applied) {
      if (a.fault.kind === 'kill') continue;
      const injector = injectorThat(a);
      groups.set(injector, [...(groups.get(injector) ?? []), a]);
    }
    return groups;
  }

  async function settleAll(what: string, calls: readonly Promise<unknown>[]): Promise<void> {
    const results = await Promise.allSettled(calls);
    const failed = rejections(results);
    if (failed.length === 1) throw failed[0]?.error;
    if (failed.length > 1) throw combined(what, failed);
  }

  /** Lists each injector, asking again the instances that could not be reached, a few times. */
  async function listEach(scope?: readonly string[], attempts = AUDIT_ATTEMPTS): Promise<ListedFaults[]> {
    return Promise.all(
      target.injectors().map(async (injector) => {
        const leases: ActiveLease[] = [];
        const settings: InstanceSettings[] = [];
        let pending = scope;
        for (let attempt = 0; ; attempt++) {
          if (attempt > 0) await new Promise((r) => setTimeout(r, pauseMs));
          const listing = await injector.list(pending);
          leases.push(...listing.leases);
          settings.push(...listing.settings);
          const unanswered = listing.failed;
          const retry =
            unanswered.length > 0 &&
            unanswered.every((f) => isUnreachable(f.error)) &&
            attempt < attempts - 1;
          if (!retry) return { leases, settings, failed: unanswered };
          pending = unanswered.map((f) => f.instance);
        }
      }),
    );
  }

  /** What every injector has now, asking each instance once (`fault list` shows what did not answer). */
  async function listAll(scope?: readonly string[]): Promise<ListedFaults> {
    const each = await listEach(scope, 1);
    const order = (a: { instance: string }, b: { instance: string }) => a.instance.localeCompare(b.instance);
    return {
      leases: each.flatMap((l) => l.leases).sort(order),
      settings: each.flatMap((l) => l.settings).sort(order),
      failed: each.flatMap((l) => l.failed),
    };
  }

  return {
    async inject(fault, id, leaseMs) {
      const instances = await target.resolve(fault);
      const injector = injectorOf(fault);
      const { name } = injector;
      const injectedAt = new Date(now()).toISOString();
      const planned = instances.map(
        (instance): AppliedFault => ({ fault, instance, injector: name, id, injectedAt }),
      );
      const outcomes = await injector.apply(planned, leaseMs);
      const applied = planned.map((a, i) => {
        const o = outcomes[i];
        return o?.status === 'fulfilled' && !o.value.created ? { ...a, renewed: true } : a;
      });
      const failed = rejections(outcomes);
      if (failed.length > 0) {
        // All or nothing: a fault on half the instances would make any measurement misleading.
        const created = applied.filter((_, i) => {
          const o = outcomes[i];
          return o?.status === 'fulfilled' && o.value.created;
        });
        if (created.length > 0) await injector.remove(created).catch(() => {});
        throw combined(`injecting ${fault.kind} ${id} on ${fault.service}`, failed);
      }
      return applied;
    },

    async renew(applied, leaseMs) {
      const groups = [...byInjector(applied)];
      const back = groups.map(([injector, mine]) => injector.renew(mine, leaseMs));
      await settleAll('renewing the fault leases', back);
      return (await Promise.all(back)).flat();
    },

    async remove(applied) {
      const groups = [...byInjector(applied)];
      await settleAll(
        'removing the faults',
        groups.map(([injector, mine]) => injector.remove(mine)),
      );
    },

    async observe(applied) {
      const first = applied[0];
      if (!first) return {};
      const injector = injectorThat(first);
      return (await injector.observe?.(applied)) ?? {};
    },

    async audit() {
      const each = await listEach();
      const failed = each.flatMap((l) => l.failed);
      if (failed.length > 0) throw combined('auditing the lab for leftover faults', failed);
      // Per injector, per instance: its faults, then its settings override.
      return each.flatMap(({ leases, settings }) => {
        const instances = [...new Set([...leases, ...settings].map((x) => x.instance))];
        return instances.flatMap((instance): LeftoverFault[] => [
          ...leases
            .filter((l) => l.instance === instance)
            .map(({ injector, id, kind }) => ({ instance, injector, id, kind })),
          ...settings
            .filter((s) => s.instance === instance && s.overridden)
            .map((s) => ({
              instance,
              injector: 'fault-agent' as const,
              id: s.id ?? 'settings',
              kind: `settings (${describeSettings(s.override ?? s)})`,
            })),
        ]);
      });
    },

    list: listAll,

    async removeById(id, scope) {
      const listing = await listAll(scope);
      if (listing.failed.length > 0) throw combined(`removing ${id}`, listing.failed);
      const mine = listing.leases.filter((l) => l.id === id);
      await settleAll(
        `removing ${id}`,
        target
          .injectors()
          .map((injector) => {
            const leases = mine.filter((l) => l.injector === injector.name);
            return leases.length > 0 ? injector.remove(leases) : undefined;
          })
          .filter((call) => call !== undefined),
      );
      return mine.map((l) => l.instance);
    },

    async clearAll(scope) {
      const counts = await Promise.allSettled(target.injectors().map((i) => i.clear(scope)));
      const failed = rejections(counts);
      if (failed.length > 0) throw combined('clearing every fault', failed);
      return counts.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value : 0), 0);
    },

    async applySettings(settings, leaseMs, id) {
      const { workerRecovery, trust } = settings;
      if (workerRecovery === undefined && trust === undefined) return;
      const instances = await target.instances();
      const backends = instances.filter((i) => i.service !== 'gateway').map((i) => i.id);
      const gateways = instances.filter((i) => i.service === 'gateway').map((i) => i.id);
      // Both sides at once: settings are applied before the variant's load starts and cleared
      // after it stops, so no page is caught between a gateway and a backend in two modes.
      await settleAll(`settings ${id}`, [
        target.agents().setSettings(backends, settings, leaseMs, id),
        ...(trust !== undefined ? [target.agents().setSettings(gateways, { trust }, leaseMs, id)] : []),
      ]);
    },

    async clearSettings() {
      // Gateways too: a trust override is on them as well (whoever set it).
      await target.agents().resetSettings((await target.instances()).map((i) => i.id));
    },
  };
}
