/**
 * The fault agent inside every instance (services/lib/fault-agent.ts): http-delay, http-error and
 * worker-panic as leases, and the worker settings override. The same on both targets; a target
 * only says how to reach an instance's agent (its URL, or a port-forward to its pod).
 */
import {
  type Target as AdminTarget,
  AgentClient,
  onEvery,
  type SettingsOverride,
} from '../../admin-client.ts';
import {
  type ActiveLease,
  type AppliedFault,
  combined,
  type FaultInjector,
  type InstanceSettings,
  keyOf,
  type Listing,
  refusals,
} from '../injector.ts';
import { observedErrors, type Reading } from '../readings.ts';
import { leaseBody, leaseCalls, leasesOf } from './lease.ts';

export interface AgentInjectorOptions {
  /** The lab's admin token. */
  readonly token: () => string;
  /** An instance's agent. */
  readonly reach: (instance: string) => AdminTarget | Promise<AdminTarget>;
  /** Every instance with an agent now, for listing and clearing. */
  readonly instances: () => Promise<readonly { readonly id: string; readonly service: string }[]>;
  /** One reading of an instance's /metrics (for http-error's calibration). */
  readonly scrape: (instance: string) => Promise<Reading>;
}

export interface AgentInjector extends FaultInjector {
  /** Overrides worker recovery on the instances for a while, as lease `id` (audits name it). */
  setRecovery(
    instances: readonly string[],
    workerRecovery: boolean,
    leaseMs: number,
    id: string,
  ): Promise<void>;
  /** Overrides settings (worker recovery, trust) on the instances for a while, as lease `id`. */
  setSettings(
    instances: readonly string[],
    settings: SettingsOverride,
    leaseMs: number,
    id: string,
  ): Promise<void>;
  /** Drops the override: back to the lab's default. */
  resetSettings(instances: readonly string[]): Promise<void>;
}

export function createAgentInjector(options: AgentInjectorOptions): AgentInjector {
  const client = () => new AgentClient(options.token());
  const reach = async (instance: string) => options.reach(instance);
  /** Per applied http-error: the agent's reading once the lease was on. */
  const errorBase = new Map<string, Reading>();
  let settingsId: string | undefined;
  const leases = leaseCalls(client, reach);

  async function inScope(scope?: readonly string[]) {
    const all = await options.instances();
    return scope ? all.filter((i) => scope.includes(i.id)) : all;
  }

  return {
    name: 'fault-agent',

    async apply(applied, leaseMs) {
      const agents = client();
      const results = await Promise.allSettled(
        applied.map(
          async (a) => (await agents.put(await reach(a.instance), a.id, leaseBody(a.fault, leaseMs))).created,
        ),
      );
      // http-error is read once its leases are on: every request the agents answer from here on met
      // the fault (but for the few in flight now), so the observed share is the configured one. An
      // agent that cannot be read then has its lease taken off again, and fails.
      return Promise.all(
        results.map(async (r, i): Promise<PromiseSettledResult<{ created: boolean }>> => {
          const a = applied[i] as AppliedFault;
          if (r.status === 'rejected') return r;
          if (a.fault.kind !== 'http-error') return { status: 'fulfilled', value: { created: r.value } };
          try {
            errorBase.set(keyOf(a), await options.scrape(a.instance));
            return { status: 'fulfilled', value: { created: r.value } };
          } catch (err) {
            await agents.remove(await reach(a.instance), a.id).catch(() => {});
            return {
              status: 'rejected',
              reason: new Error(
                `${a.instance}: reading its metrics before an http-error: ${(err as Error).message}`,
              ),
            };
          }
        }),
      );
    },

    ...leases,

    async observe(applied) {
      const errors = applied.filter((a) => a.fault.kind === 'http-error');
      if (errors.length === 0) return {};
      const { ok, failed } = await onEvery(
        errors.map((a) => ({ id: a.instance, url: '', key: keyOf(a) })),
        (t) => options.scrape(t.id),
      );
      if (failed.length > 0) throw combined('observing http-error', failed);
      const observed = observedErrors(ok.map((o) => ({ now: o.value, base: errorBase.get(o.target.key) })));
      for (const a of errors) errorBase.delete(keyOf(a));
      return observed;
    },

    async list(scope) {
      const instances = await inScope(scope);
      const agents = client();
      const views = await onEvery(
        instances.map((i) => ({ id: i.id, url: '', service: i.service })),
        async (t) => agents.view(await reach(t.id)),
      );
      const leases: ActiveLease[] = [];
      const settings: InstanceSettings[] = [];
      for (const { target, value } of views.ok) {
        leases.push(...leasesOf(target.id, 'fault-agent', value.faults));
        settings.push({
          instance: target.id,
          service: target.service,
          ...value.settings,
          ...(value.settings.overridden && settingsId ? { id: settingsId } : {}),
        });
      }
      return {
        leases,
        settings,
        failed: views.failed.map((f) => ({ instance: f.target.id, error: f.error })),
      } satisfies Listing;
    },

    async clear(scope) {
      const agents = client();
      const { ok, failed } = await onEvery(
        (await inScope(scope)).map((i) => ({ id: i.id, url: '' })),
        async (t) => agents.clear(await reach(t.id)),
      );
      // Clearing also drops the settings overrides (the agents' DELETE /__chaos/faults does both).
      if (!scope) settingsId = undefined;
      refusals('clearing every fault', failed);
      return ok.reduce((n, o) => n + o.value.removed, 0);
    },

    async setRecovery(instances, workerRecovery, leaseMs, id) {
      await this.setSettings(instances, { workerRecovery }, leaseMs, id);
    },

    async setSettings(instances, settings, leaseMs, id) {
      settingsId = id;
      const agents = client();
      const { failed } = await onEvery(
        instances.map((i) => ({ id: i, url: '' })),
        async (t) => agents.setSettings(await reach(t.id), settings, leaseMs),
      );
      // An instance restarting (a panic without recovery) gets the override at the next renewal.
      refusals(`settings ${id} (${describeSettings(settings)})`, failed);
    },

    async resetSettings(instances) {
      const agents = client();
      const { failed } = await onEvery(
        instances.map((i) => ({ id: i, url: '' })),
        async (t) => agents.resetSettings(await reach(t.id)),
      );
      refusals('clearing the settings', failed);
      settingsId = undefined;
    },
  };
}

/** `workerRecovery off, trust full`: what an override sets, for messages and audits. */
export function describeSettings(settings: SettingsOverride): string {
  const parts: string[] = [];
  if (settings.workerRecovery !== undefined)
    parts.push(`workerRecovery ${settings.workerRecovery ? 'on' : 'off'}`);
  if (settings.trust !== undefined) parts.push(`trust ${settings.trust}`);
  return parts.join(', ');
}
