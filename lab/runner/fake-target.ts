/**
 * In-memory stand-ins for the run's two outside collaborators — the target and the load generator — so
 * the lifecycle (and above all its rollback) is tested without a lab. The fake target behaves like the
 * real agents where it matters: a renewal of a removed lease brings it back (as `PUT /__chaos/faults/:id`
 * does), so a runner that renews after removing is caught by the audit.
 */
import type { TrustMode } from '../../services/lib/trust.ts';
import { BACKENDS, type BackendName, type Strategy } from '../../services/topology.ts';
import type { AppliedFault, InstanceSettings } from '../faults/injector.ts';
import type { AgentInjector } from '../faults/injectors/agent.ts';
import type { InjectorName } from '../faults/kind.ts';
import type { AnyFault, FaultKind } from '../faults/registry.ts';
import type {
  LoadGenerator,
  LoadGeneratorOptions,
  LoadSummary,
  SecondSummary,
  TargetStats,
} from '../load/generator.ts';
import { instanceIds, type VariantSettings } from './experiment.ts';
import {
  LabBusyError,
  type ProxyCounters,
  type RogueAnswer,
  type RunHolder,
  type ServiceCounters,
  type Target,
  type TargetInfo,
} from './target.ts';

/** What the fake records, the runner's view of a lab: the target's calls and its injectors'. */
type Method =
  | 'prepare'
  | 'settle'
  | 'applySettings'
  | 'clearSettings'
  | 'inject'
  | 'renew'
  | 'remove'
  | 'counters'
  | 'observe'
  | 'audit'
  | 'clearAll'
  | 'release';

export interface FakeTargetOptions {
  /** Kinds this target refuses, with the reason. */
  readonly unsupported?: Partial<Record<FaultKind, string>>;
  /** Injectors asked for by name that its lab refuses (as the kind target's netem probe), with the reason. */
  readonly refusedInjectors?: Partial<Record<InjectorName, string>>;
  /** Another run holds the lab: holdLab refuses, labHolder names it. */
  readonly heldBy?: RunHolder;
  /** Its fault proxies' restarts are counted, as the local lab's are (`proxyRestarts`). */
  readonly countsProxies?: boolean;
  /** The lab's trust mode, as prepare() reports it. */
  readonly trust?: TrustMode;
  /** What a rogue call gets, by the trust mode in force (the variant's setting, else the lab's). @default served in zero trust, 401 TRUST_MISSING otherwise */
  readonly rogueAnswer?: (service: BackendName, trust: TrustMode) => RogueAnswer;
  /** Without rogue calls, as a target that cannot make them. */
  readonly noRogue?: boolean;
}

export interface FakeTarget extends Target {
  /** Every call, in order: `prepare`, `inject latency coin <id>`, `renew <ids>`, `remove <ids>`, … */
  readonly calls: string[];
  /** `hold <experiment> <pid>` and `release <experiment>`, in order: the run's lock on the lab. */
  readonly locks: string[];
  /** Leases active now, by `<instance>/<id>`. */
  readonly leases: Map<string, AppliedFault>;
  /** The settings override active now, if any. */
  settings: (VariantSettings & { readonly id: string }) | undefined;
  /** Cumulative counters; tests bump them to make phases differ. `kill` adds a restart. */
  readonly counterValues: Record<BackendName, { restarts: number; panicsRecovered: number }>;
  /**
   * What the next settle() calls report they waited, in order (a test's script of a lab that had to
   * settle); once it is empty, settle() waits for nothing.
   */
  readonly settleWaits: number[];
  /** The next call of `method` for which `when` is true (default: the next call) fails with `error`. */
  failOn(method: Method, when?: (...args: unknown[]) => boolean, error?: Error): void;
  /** The next call of `method` never settles. */
  hangOn(method: Method): void;
  /** The lab stops while a run watches it: the run's `watch` callback hears `why`. */
  loseLab(why: string): void;
  /**
   * The fault proxy in front of `instance` restarts at `at` (epoch ms): its restarts rise, and the
   * fault-proxy leases on it are lost, as a real proxy's would be.
   */
  restartProxy(instance: string, at: number): void;
  callsTo(method: Method): string[];
}

export const FAKE_GATEWAYS: Readonly<Record<Strategy, string>> = {
  naive: 'http://127.0.0.1:1',
  parallel: 'http://127.0.0.1:2',
  resilient: 'http://127.0.0.1:3',
};

/**
 * A lab in memory whose injectors record an injection as one call (`inject <kind> <service> <id>`),
 * as the runner asks for it.
 */
export function createFakeTarget(options: FakeTargetOptions = {}): FakeTarget {
  const calls: string[] = [];
  const locks: string[] = [];
  const leases = new Map<string, AppliedFault>();
  const failures: { method: Method; when: (...args: unknown[]) => boolean; error: Error }[] = [];
  const hangs = new Set<Method>();
  const proxyCounters = new Map<string, ProxyCounters>();
  const counterValues = Object.fromEntries(
    BACKENDS.map((b) => [b, { restarts: 0, panicsRecovered: 0 }]),
  ) as FakeTarget['counterValues'];

  /** Records the call, then fails or hangs it when armed to. */
  async function enter(method: Method, detail: string, args: unknown[]): Promise<void> {
    calls.push(detail ? `${method} ${detail}` : method);
    await Promise.resolve();
    if (hangs.delete(method)) await new Promise<never>(() => {});
    const index = failures.findIndex((f) => f.method === method && f.when(...args));
    if (index >= 0) {
      const [failure] = failures.splice(index, 1);
      throw failure?.error;
    }
  }
  const key = (a: Pick<AppliedFault, 'instance' | 'id'>) => `${a.instance}/${a.id}`;
  const ids = (applied: readonly { readonly id: string }[]) =>
    [...new Set(applied.map((a) => a.id))].join(',');

  const injector: AgentInjector = {
    name: 'fault-agent',
    async apply(applied, leaseMs) {
      const fault = applied[0]?.fault as AnyFault;
      await enter('inject', `${fault.kind} ${fault.service} ${applied[0]?.id}`, [
        fault,
        applied[0]?.id,
        leaseMs,
      ]);
      if (fault.kind === 'kill') {
        if (fault.service !== 'gateway') counterValues[fault.service].restarts += applied.length;
      } else for (const a of applied) leases.set(key(a), a);
      return applied.map(() => ({ status: 'fulfilled', value: { created: true } }) as const);
    },
    async renew(applied, leaseMs) {
      await enter('renew', ids(applied), [applied, leaseMs]);
      // Like the agents' PUT: renewing a lease that is gone creates it again, and says so.
      const back = applied.filter((a) => !leases.has(key(a)));
      for (const a of applied) leases.set(key(a), a);
      return back;
    },
    async remove(applied) {
      await enter('remove', ids(applied), [applied]);
      for (const a of applied) leases.delete(key(a));
    },
    async observe(applied): Promise<Record<string, number>> {
      await enter('observe', ids(applied), [applied]);
      const fault = applied[0]?.fault;
      if (fault?.kind === 'latency') return { addedLatencyMs: fault.delayMs + 1.5 };
      if (fault?.kind === 'loss') return { lossRate: fault.percent / 100 };
      if (fault?.kind === 'http-error') return { errorRate: fault.percent / 100 };
      return {};
    },
    async list() {
      await enter('audit', '', []);
      const settings: InstanceSettings[] = target.settings
        ? [
            {
              instance: '*',
              service: '*',
              workerRecovery: target.settings.workerRecovery ?? false,
              overridden: true,
              expiresAt: null,
              id: target.settings.id,
            },
          ]
        : [];
      return {
        leases: [...leases.values()].map((a) => ({
          instance: a.instance,
          injector: a.injector,
          id: a.id,
          kind: a.fault.kind,
          params: {},
          leaseMs: 0,
          appliedAt: 0,
          expiresAt: null,
        })),
        settings,
        failed: [],
      };
    },
    async clear() {
      await enter('clearAll', '', []);
      const removed = leases.size;
      leases.clear();
      target.settings = undefined;
      return removed;
    },
    async setRecovery(instances, workerRecovery, leaseMs, id) {
      await this.setSettings(instances, { workerRecovery }, leaseMs, id);
    },
    async setSettings(_instances, settings, leaseMs, id) {
      await enter('applySettings', `${JSON.stringify(settings)} ${leaseMs} ${id}`, [settings, leaseMs, id]);
      target.settings = { ...target.settings, ...settings, id };
    },
    async resetSettings() {
      await enter('clearSettings', '', []);
      target.settings = undefined;
    },
  };
  /**
   * The local lab's injectors, so that results name them as a local run's; they record into one
   * log, and the agent's listing and clearing stand for the whole lab (one `audit`, one `clearAll`).
   */
  const quiet = (name: 'fault-proxy' | 'supervisor') => ({
    ...injector,
    name,
    list: async () => ({ leases: [], settings: [], failed: [] }),
    clear: async () => 0,
  });
  const injectors = [injector, quiet('fault-proxy'), quiet('supervisor')];
  let watcher: ((why: string) => void) | undefined;

  const target: FakeTarget = {
    name: 'local',
    calls,
    leases,
    settings: undefined,
    counterValues,
    settleWaits: [],
    unsupported: (fault) => options.unsupported?.[typeof fault === 'string' ? fault : fault.kind],
    locks,
    async holdLab(holder) {
      if (options.heldBy) throw new LabBusyError(options.heldBy);
      locks.push(`hold ${holder.experiment} ${holder.pid}`);
      return {
        async release() {
          locks.push(`release ${holder.experiment}`);
        },
      };
    },
    async labHolder() {
      return options.heldBy;
    },
    async refusedInjectors(asked) {
      calls.push(`refusedInjectors ${asked.join(' ')}`);
      return Object.fromEntries(
        asked.flatMap((name) => {
          const why = options.refusedInjectors?.[name];
          return why === undefined ? [] : [[name, why]];
        }),
      );
    },
    failOn(method, when = () => true, error = new Error(`fake ${method} failure`)) {
      failures.push({ method, when, error });
    },
    hangOn(method) {
      hangs.add(method);
    },
    restartProxy(instance, at) {
      const counters = proxyCounters.get(instance) ?? { restarts: 0, lastExitAt: null };
      proxyCounters.set(instance, {
        restarts: counters.restarts + 1,
        lastExitAt: new Date(at).toISOString(),
      });
      for (const [k, a] of leases)
        if (a.instance === instance && a.injector === 'fault-proxy') leases.delete(k);
    },
    loseLab(why) {
      watcher?.(why);
    },
    watch(lost) {
      watcher = lost;
      return () => {
        watcher = undefined;
      };
    },
    callsTo: (method) => calls.filter((c) => c === method || c.startsWith(`${method} `)),

    async prepare(progress, signal) {
      await enter('prepare', '', []);
      signal.throwIfAborted();
      progress('fake lab ready');
      return {
        name: 'local',
        gateways: FAKE_GATEWAYS,
        ...(options.trust ? { trust: options.trust } : {}),
      } satisfies TargetInfo;
    },
    async settle(progress, signal) {
      await enter('settle', '', []);
      signal.throwIfAborted();
      const waitedMs = target.settleWaits.shift() ?? 0;
      if (waitedMs > 0) {
        progress(`fake lab: waiting ${waitedMs} ms for its instances`);
        await new Promise((resolve) => setTimeout(resolve, waitedMs));
      }
      return { waitedMs };
    },
    async instances(service) {
      const all = BACKENDS.flatMap((b) => instanceIds(b).map((id) => ({ id, service: b })));
      return service ? all.filter((i) => i.service === service) : all;
    },
    async resolve(fault) {
      return fault.instances.length > 0 || fault.service === 'gateway'
        ? fault.instances
        : instanceIds(fault.service);
    },
    injectors: () => injectors,
    agents: () => injector,
    ...(options.noRogue
      ? {}
      : {
          async rogueCall(service: BackendName, path: string) {
            const trust = target.settings?.trust ?? options.trust ?? 'zero';
            calls.push(`rogue ${service} ${path} (${trust})`);
            return (
              options.rogueAnswer?.(service, trust) ??
              (trust === 'zero' ? { status: 200 } : { status: 401, reason: 'TRUST_MISSING' })
            );
          },
        }),
    ...(options.countsProxies
      ? {
          async proxyRestarts() {
            const all = BACKENDS.flatMap((b) => instanceIds(b));
            return Object.fromEntries(
              all.map((i) => [i, proxyCounters.get(i) ?? { restarts: 0, lastExitAt: null }]),
            );
          },
        }
      : {}),
    async counters() {
      await enter('counters', '', []);
      return structuredClone(counterValues) as Record<BackendName, ServiceCounters>;
    },
    async release() {
      await enter('release', '', []);
    },
  };
  return target;
}

// ---------------------------------------------------------------------------------------------------------
// The load generator

export function fakeTargetStats(overrides: Partial<TargetStats> = {}): TargetStats {
  return {
    sent: 100,
    requests: 100,
    dropped: 0,
    late: 0,
    cancelled: 0,
    ok: 100,
    degraded: 0,
    successRate: 1,
    degradedRate: 0,
    latencyMs: { p50: 10, p95: 20, p99: 30, max: 40 },
    errors: {},
    achievedRps: 10,
    lateShare: 0,
    fellBehind: false,
    ...overrides,
  };
}

export interface FakeGenerator extends LoadGenerator {
  readonly options: LoadGeneratorOptions;
  /** `start warmup`, `mark baseline`, `stop drain` / `stop cancel`. */
  readonly calls: string[];
}

/**
 * A factory of fake generators driven by the (fake) clock: windows open at `start`/`mark`, a second is
 * reported every 1000 ms, and each window's figures per target come from `statsOf(window, target)`; a
 * second's, from `statsOf(window it ends in, target, second)` (a lab that warms up second by second).
 */
export function fakeGenerators(
  statsOf: (window: string, target: string, second?: number) => Partial<TargetStats> = () => ({}),
  now: () => number = Date.now,
): { readonly created: FakeGenerator[]; readonly factory: (options: LoadGeneratorOptions) => LoadGenerator } {
  const created: FakeGenerator[] = [];
  const factory = (options: LoadGeneratorOptions): LoadGenerator => {
    const calls: string[] = [];
    const windows: { name: string; start: number; end?: number }[] = [];
    const seconds: SecondSummary[] = [];
    const listeners = new Set<(s: SecondSummary) => void>();
    let t0 = 0;
    let ticker: NodeJS.Timeout | undefined;
    let stopped: Promise<LoadSummary> | undefined;
    const targets = (window: string, second?: number) =>
      Object.fromEntries(
        options.targets.map((t) => [t.name, fakeTargetStats(statsOf(window, t.name, second))]),
      );

    const generator: FakeGenerator = {
      options,
      calls,
      start(window = 'main') {
        calls.push(`start ${window}`);
        t0 = now();
        windows.push({ name: window, start: t0 });
        ticker = setInterval(() => {
          const second: SecondSummary = {
            second: seconds.length,
            durationMs: 1000,
            targets: targets(windows.at(-1)?.name ?? window, seconds.length),
          };
          seconds.push(second);
          for (const listener of listeners) listener(second);
        }, 1000);
      },
      mark(window) {
        calls.push(`mark ${window}`);
        const at = now();
        const last = windows.at(-1);
        if (last) last.end = at;
        windows.push({ name: window, start: at });
      },
      onSecond(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      stop(stopOptions = {}) {
        calls.push(stopOptions.drain === false ? 'stop cancel' : 'stop drain');
        clearInterval(ticker);
        const end = now();
        const last = windows.at(-1);
        if (last && last.end === undefined) last.end = end;
        const summaries = windows.map((w) => {
          const stats = targets(w.name);
          return {
            name: w.name,
            startMs: w.start - t0,
            durationMs: (w.end ?? end) - w.start,
            targets: stats,
            fellBehind: Object.values(stats).some((s) => s.fellBehind),
          };
        });
        stopped ??= Promise.resolve({
          rate: options.rate,
          timeoutMs: options.timeoutMs ?? 2000,
          maxInFlight: 100,
          lateThresholdMs: 10,
          startedAt: t0,
          durationMs: end - t0,
          targets: targets('main'),
          windows: summaries,
          seconds,
          fellBehind: summaries.some((w) => w.fellBehind),
          fellBehindReason: undefined,
        });
        return stopped;
      },
    };
    created.push(generator);
    return generator;
  };
  return { created, factory };
}
