import { describe, expect, it } from 'vitest';
import { AdminError } from '../admin-client.ts';
import type { ActiveLease, AppliedFault, LeaseRef } from '../faults/injector.ts';
import type { AgentInjector } from '../faults/injectors/agent.ts';
import type { Fault } from '../faults/registry.ts';
import { faultsOf } from './faults.ts';
import type { Target } from './target.ts';

/**
 * What the runner does with faults once for every target: all or nothing, renewal and removal by
 * the injector that applied them, audits that ask a restarting instance again. Against an injector
 * kept in memory, whose instances can refuse or be unreachable.
 */
function lab(instances: readonly string[]) {
  const leases = new Map<string, { instance: string; id: string; kind: string }>();
  const refuse = new Set<string>();
  const unreachable = new Map<string, number>();
  const calls: string[] = [];
  const key = (l: LeaseRef) => `${l.instance}/${l.id}`;
  const injector: AgentInjector = {
    name: 'fault-agent',
    async apply(applied: readonly AppliedFault[]) {
      calls.push(`apply ${applied.map((a) => a.instance).join(',')}`);
      return applied.map((a) => {
        if (refuse.has(a.instance)) {
          return {
            status: 'rejected',
            reason: new AdminError(a.instance, `${a.instance} refused PUT`, 400),
          } as const;
        }
        const created = !leases.has(key(a));
        leases.set(key(a), { instance: a.instance, id: a.id, kind: a.fault.kind });
        return { status: 'fulfilled', value: { created } } as const;
      });
    },
    async renew(applied) {
      calls.push(`renew ${applied.length}`);
      return [];
    },
    async remove(refs) {
      calls.push(`remove ${refs.map(key).join(',')}`);
      for (const r of refs) leases.delete(key(r));
    },
    async list(scope) {
      const asked = (scope ?? instances).filter((i) => instances.includes(i));
      const failed = asked.flatMap((instance) => {
        const left = unreachable.get(instance) ?? 0;
        if (left === 0) return [];
        unreachable.set(instance, left - 1);
        return [{ instance, error: new AdminError(instance, `${instance}: connection refused`) }];
      });
      const answered = asked.filter((i) => !failed.some((f) => f.instance === i));
      return {
        leases: [...leases.values()]
          .filter((l) => answered.includes(l.instance))
          .map(
            (l): ActiveLease => ({
              ...l,
              injector: 'fault-agent',
              params: {},
              leaseMs: 1,
              appliedAt: 0,
              expiresAt: 1,
            }),
          ),
        settings: [],
        failed,
      };
    },
    async clear(scope) {
      const mine = [...leases.entries()].filter(([, l]) => !scope || scope.includes(l.instance));
      for (const [k] of mine) leases.delete(k);
      return mine.length;
    },
    async setRecovery() {},
    async setSettings() {},
    async resetSettings() {},
  };
  const target: Target = {
    name: 'local',
    unsupported: () => undefined,
    prepare: async () => ({ name: 'local', gateways: { naive: '', parallel: '', resilient: '' } }),
    instances: async () => instances.map((id) => ({ id, service: 'coin' as const })),
    resolve: async (fault) => (fault.instances.length > 0 ? fault.instances : instances),
    injectors: () => [injector],
    agents: () => injector,
    counters: async () => {
      throw new Error('not used');
    },
    release: async () => {},
  };
  return { target, leases, refuse, unreachable, calls };
}

const httpError = (instances: string[] = []): Fault => ({
  kind: 'http-error',
  service: 'coin',
  instances,
  status: 503,
  percent: 50,
});

describe('faults through a target', () => {
  it('puts a fault on every instance or none: a refusal takes off only what this injection created', async () => {
    const { target, leases, refuse, calls } = lab(['coin-1', 'coin-2', 'coin-3']);
    const faults = faultsOf(target);
    // coin-1 has the lease already (a renewal by the same id): it must stay when the rest is undone.
    await faults.inject(httpError(['coin-1']), 'f', 1_000);
    refuse.add('coin-3');
    await expect(faults.inject(httpError(), 'f', 1_000)).rejects.toThrow(
      /^injecting http-error f on coin: coin-3 refused PUT$/,
    );
    expect(calls.at(-1)).toBe('remove coin-2/f');
    expect([...leases.keys()]).toEqual(['coin-1/f']);
  });

  it('says which injections renewed a lease, and names the injector the registry gives the target', async () => {
    const { target } = lab(['coin-1', 'coin-2']);
    const faults = faultsOf(target);
    const first = await faults.inject(httpError(['coin-1']), 'f', 1_000);
    expect(first.map((a) => [a.instance, a.injector, a.renewed])).toEqual([
      ['coin-1', 'fault-agent', undefined],
    ]);
    const again = await faults.inject(httpError(), 'f', 1_000);
    expect(again.map((a) => [a.instance, a.renewed])).toEqual([
      ['coin-1', true],
      ['coin-2', undefined],
    ]);
  });

  it('audits every instance, asking one that is restarting again, and fails when one stays unreachable', async () => {
    const { target, unreachable } = lab(['coin-1', 'coin-2']);
    const faults = faultsOf(target, { auditPauseMs: 1 });
    await faults.inject(httpError(), 'f', 1_000);
    unreachable.set('coin-2', 2);
    expect(await faults.audit()).toEqual([
      { instance: 'coin-1', injector: 'fault-agent', id: 'f', kind: 'http-error' },
      { instance: 'coin-2', injector: 'fault-agent', id: 'f', kind: 'http-error' },
    ]);
    unreachable.set('coin-2', 10);
    await expect(faults.audit()).rejects.toThrow(
      /^auditing the lab for leftover faults: coin-2: connection refused$/,
    );
  });

  it('removes by id on the instances of a scope, and clears a scope', async () => {
    const { target, leases } = lab(['coin-1', 'coin-2']);
    const faults = faultsOf(target);
    await faults.inject(httpError(), 'a', 1_000);
    await faults.inject(httpError(), 'b', 1_000);
    expect(await faults.removeById('a', ['coin-2'])).toEqual(['coin-2']);
    expect([...leases.keys()].sort()).toEqual(['coin-1/a', 'coin-1/b', 'coin-2/b']);
    expect(await faults.clearAll(['coin-1'])).toBe(2);
    expect([...leases.keys()]).toEqual(['coin-2/b']);
  });
});
