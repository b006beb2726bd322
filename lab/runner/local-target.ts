/**
 * The local target: experiments on the local lab, through the lab's own interfaces only —
 * the supervisor's control API (status, kill), the fault agent in every instance (http-error,
 * worker-panic, worker settings) and the fault proxy in front of every backend instance
 * (latency, loss). Every fault is a lease with the id the runner gives it.
 *
 * The lab: if one is running in the home (its supervisor alive), the target uses it and
 * leaves it running. Otherwise it starts one tied to this process (child-lab.ts): the lab
 * stops at `release()`, and also when this process dies in any way, SIGKILL included, so a
 * killed runner leaves neither processes nor faults behind.
 *
 * Counters: restarts come from the supervisor (counted per instance, and per fault proxy, since
 * the lab started); recovered panics from each instance's own `worker_panics_recovered_total`,
 * which starts again from zero when the process restarts. So that the cumulative figure never
 * goes back, each instance has a RestartSafeCounter: when its process changed (another
 * `process_start_time_seconds`) or its count went down, the last count seen of the old
 * process is kept as an offset. What the old process recovered after that last reading and
 * before it died is lost: it died with the process, as it would with a Prometheus scrape.
 */

import {
  BACKENDS,
  type BackendName,
  isBackendName,
  STRATEGIES,
  type Strategy,
} from '../../services/topology.ts';
import {
  AdminError,
  type Target as AdminTarget,
  callJson,
  fetchLabStatus,
  onEvery,
} from '../admin-client.ts';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import type { FaultInjector } from '../faults/injector.ts';
import { type AgentInjector, createAgentInjector } from '../faults/injectors/agent.ts';
import { createKillInjector } from '../faults/injectors/kill.ts';
import { createProxyInjector } from '../faults/injectors/proxy.ts';
import { type Reading, RestartSafeCounter, readingOf } from '../faults/readings.ts';
import { type AnyFault, type FaultKind, injectorFor, unsupportedBy } from '../faults/registry.ts';
import { type ChildLab, startChildLab } from '../local/child-lab.ts';
import type { LabStatus } from '../local/control-server.ts';
import { NO_LAB } from '../local/find-lab.ts';
import { progressLine, UP_DEFAULTS } from '../local/lab.ts';
import { DEFAULT_PORT_BASE, labLayout, portsOf } from '../local/layout.ts';
import { acquireRunLock, readRunLock } from '../local/run-lock.ts';
import { type LabState, labHome, lookupLab, pidAlive, removeState } from '../local/state.ts';
import { parsePromText } from '../prom-text.ts';
import { RogueTurns, rogueGet } from './rogue.ts';
import type {
  PrepareOptions,
  ProxyCounters,
  RogueAnswer,
  RunHolder,
  ServiceCounters,
  Target,
  TargetInfo,
  TargetInstance,
} from './target.ts';

/** The injectors of the local lab. */
export const LOCAL_INJECTORS = ['fault-agent', 'fault-proxy', 'supervisor'] as const;

export interface LocalTargetOptions {
  /** The lab home. @default `$CHAOS_LAB_HOME`, else `<repo>/.chaos-lab` */
  readonly home?: string;
  /** First port of a lab this target starts (a running lab keeps its own). @default 18000 */
  readonly portBase?: number;
  /** How long a lab may take to be ready, started or found. @default 90 s */
  readonly readyTimeoutMs?: number;
  /**
   * Log level of the instances of a lab this target starts: under load, `info` would log
   * every request and compete with them for the CPU. @default 'warn'
   */
  readonly logLevel?: string;
  /** Lines about the lab outside `prepare()` (it stopped, or stopped unexpectedly). @default dropped */
  readonly progress?: (line: string) => void;
}

const WATCH_EVERY_MS = 500;

async function fetchText(url: string, timeoutMs = 3_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return text;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PreparedLab {
  readonly state: LabState;
  /** Set when this target started the lab (and must stop it). */
  readonly child?: ChildLab;
}

class LocalTarget implements Target {
  readonly name = 'local';
  readonly #home: string;
  readonly #portBase: number;
  readonly #readyTimeoutMs: number;
  readonly #logLevel: string;
  readonly #say: (line: string) => void;
  #lab: PreparedLab | undefined;
  readonly #panics = new Map<string, RestartSafeCounter>();
  readonly #agents: AgentInjector;
  readonly #injectors: Readonly<Record<(typeof LOCAL_INJECTORS)[number], FaultInjector>>;

  constructor(options: LocalTargetOptions) {
    this.#home = options.home ?? labHome();
    this.#portBase = options.portBase ?? DEFAULT_PORT_BASE;
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    this.#logLevel = options.logLevel ?? 'warn';
    this.#say = options.progress ?? (() => {});
    const token = () => this.#state().adminToken;
    this.#agents = createAgentInjector({
      token,
      reach: (instance) => this.#agent(instance),
      instances: async () => this.#state().instances,
      scrape: (instance) => this.#scrape(this.#agent(instance)),
    });
    this.#injectors = {
      'fault-agent': this.#agents,
      'fault-proxy': createProxyInjector({
        token,
        // A lab started before the proxies existed has none (resolve() refuses their faults).
        proxies: async () =>
          (this.#state().proxies ?? []).map((p) => ({
            instance: p.instance,
            admin: { id: p.id, url: p.adminUrl },
          })),
      }),
      supervisor: createKillInjector('supervisor', (instance) => this.#kill(instance)),
    };
  }

  unsupported(fault: FaultKind | AnyFault): string | undefined {
    return unsupportedBy({ name: this.name, injectors: this.injectors() }, fault);
  }

  async holdLab(holder: RunHolder): Promise<{ release(): Promise<void> }> {
    return acquireRunLock(this.#home, holder);
  }

  async labHolder(): Promise<RunHolder | undefined> {
    return readRunLock(this.#home);
  }

  async prepare(
    progress: (line: string) => void,
    signal: AbortSignal,
    options: PrepareOptions = {},
  ): Promise<TargetInfo> {
    if (!this.#lab) {
      this.#lab =
        options.start === false ? { state: this.#running() } : await this.#findOrStart(progress, signal);
    }
    const { state } = this.#lab;
    return {
      name: 'local',
      gateways: this.#gateways(state),
      workerRecovery: state.workerRecovery,
      trust: state.trust.mode,
    };
  }

  /**
   * Nothing to wait for: the local supervisor's back-off tops out at 8 s, not the kubelet's
   * minutes of CrashLoopBackOff, and a crashed instance's peer serves meanwhile, as the local
   * lab's experiments are written to show.
   */
  async settle(): Promise<{ waitedMs: number }> {
    return { waitedMs: 0 };
  }

  async #findOrStart(progress: (line: string) => void, signal: AbortSignal): Promise<PreparedLab> {
    const found = lookupLab(this.#home);
    if (found.kind === 'stale') {
      removeState(this.#home);
      progress(`removed a stale lab state file (its supervisor, pid ${found.state.pid}, is gone)`);
    }
    if (found.kind === 'running') {
      const { state } = found;
      if (!state.proxies || state.proxies.length === 0) {
        throw new Error(
          `the lab running in ${this.#home} (supervisor pid ${state.pid}) has no fault proxies: it was started by an older chaos-lab; stop it (npx chaos-lab down) and the run starts its own`,
        );
      }
      progress(
        `using the lab already running in ${this.#home} (supervisor pid ${state.pid}, gateways from port ${state.portBase + 80}); it stays up after the run`,
      );
      await this.#waitReady(state, progress, signal);
      return { state };
    }
    const ports = portsOf(labLayout(this.#portBase)).map((p) => p.port);
    progress(
      `starting a local lab on 127.0.0.1 ports ${Math.min(...ports)}-${Math.max(...ports)} (home ${this.#home}); it stops when this run ends`,
    );
    const child = await startChildLab(
      {
        home: this.#home,
        portBase: this.#portBase,
        trust: UP_DEFAULTS.trust,
        workerRecovery: UP_DEFAULTS.workerRecovery,
        readyTimeoutMs: this.#readyTimeoutMs,
        logLevel: this.#logLevel,
      },
      {
        note: progress,
        progress: (ready, total, waitingFor) => progress(`lab ${progressLine(ready, total, waitingFor)}`),
        signal,
      },
    );
    progress(`lab ready in ${formatDuration(child.readyInMs)} (supervisor pid ${child.pid})`);
    return { state: child.state, child };
  }

  /** A lab found running may be starting up, or have an instance restarting: wait for all. */
  async #waitReady(state: LabState, progress: (line: string) => void, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.#readyTimeoutMs;
    let last = -1;
    for (let round = 0; round < 100_000; round++) {
      const status = await this.#status(state);
      const all = [...status.instances, ...(status.proxies ?? [])];
      const waiting = all.filter((i) => !i.ready).map((i) => i.id);
      if (waiting.length === 0) return;
      if (waiting.length !== last) {
        last = waiting.length;
        progress(`lab ${progressLine(all.length - waiting.length, all.length, waiting)}`);
      }
      if (signal.aborted) throw new Error('interrupted while waiting for the lab to be ready');
      if (Date.now() >= deadline) {
        throw new Error(
          `the running lab is not ready after ${formatDuration(this.#readyTimeoutMs)}: ${waiting.join(', ')} (see npx chaos-lab status)`,
        );
      }
      await sleep(250);
    }
  }

  #gateways(state: LabState): Record<Strategy, string> {
    return Object.fromEntries(STRATEGIES.map((s) => [s, state.gateways[s] ?? ''])) as Record<
      Strategy,
      string
    >;
  }

  #state(): LabState {
    if (!this.#lab) throw new Error('the local target is not prepared: call prepare() first');
    return this.#lab.state;
  }

  #status(state: LabState): Promise<LabStatus> {
    return fetchLabStatus(state);
  }

  /** The lab running in the home, without waiting or starting one (`chaos-lab fault`). */
  #running(): LabState {
    const found = lookupLab(this.#home);
    if (found.kind === 'running') return found.state;
    throw new CliError(NO_LAB, { hint: `looked in ${this.#home} (set CHAOS_LAB_HOME to look elsewhere)` });
  }

  async instances(service?: BackendName | 'gateway'): Promise<readonly TargetInstance[]> {
    const all = this.#state().instances as readonly TargetInstance[];
    return service ? all.filter((i) => i.service === service) : all;
  }

  /** The instances a fault names, or every instance of its service; unknown ids are an error. */
  async resolve(
    fault: Pick<AnyFault, 'service' | 'instances'> & { readonly kind?: FaultKind },
  ): Promise<readonly string[]> {
    if (
      fault.kind &&
      injectorFor(this.injectors(), fault.kind)?.name === 'fault-proxy' &&
      !this.#state().proxies
    ) {
      throw new CliError('this lab runs no fault proxies: it was started by an older chaos-lab', {
        hint: 'restart it: npx chaos-lab down && npx chaos-lab up',
      });
    }
    const ofService = (await this.instances(fault.service)).map((i) => i.id);
    if (fault.instances.length === 0) return ofService;
    for (const id of fault.instances) {
      if (!ofService.includes(id)) {
        throw new Error(
          `no instance ${id} of ${fault.service} in the local lab; it has ${ofService.join(', ')}`,
        );
      }
    }
    return fault.instances;
  }

  injectors(): readonly FaultInjector[] {
    return Object.values(this.#injectors);
  }

  agents(): AgentInjector {
    return this.#agents;
  }

  #agent(instance: string): AdminTarget {
    const found = this.#state().instances.find((i) => i.id === instance);
    if (!found) throw new Error(`no instance ${instance} in the local lab`);
    return { id: found.id, url: found.url };
  }

  async #scrape(target: AdminTarget): Promise<Reading> {
    return readingOf(parsePromText(await fetchText(`${target.url}/metrics`)));
  }

  /** SIGKILL through the supervisor's control API; 409: it is down already (backing off after a crash), which is what a kill asks for. */
  async #kill(instance: string): Promise<void> {
    const state = this.#state();
    const control = { id: 'supervisor', url: state.controlUrl };
    try {
      await callJson(control, state.adminToken, 'POST', `/instances/${encodeURIComponent(instance)}/kill`);
    } catch (err) {
      if (!(err instanceof AdminError && err.status === 409)) throw err;
    }
  }

  readonly #rogueTurns = new RogueTurns();

  /** Straight to the instance's own port: around the gateways and its fault proxy. */
  async rogueCall(service: BackendName, path: string, signal: AbortSignal): Promise<RogueAnswer> {
    const instances = this.#state().instances.filter((i) => i.service === service);
    const instance = this.#rogueTurns.next(service, instances);
    if (!instance) return { status: null, reason: `no instance of ${service}` };
    return rogueGet(`${instance.url}${path}`, signal);
  }

  async counters(): Promise<Readonly<Record<BackendName, ServiceCounters>>> {
    const state = this.#state();
    const instances = state.instances.filter((i) => isBackendName(i.service));
    const [status, scraped] = await Promise.all([
      this.#status(state),
      onEvery(
        instances.map((i) => this.#agent(i.id)),
        (t) => this.#scrape(t),
      ),
    ]);
    for (const { target, value } of scraped.ok) {
      const counter = this.#panics.get(target.id) ?? new RestartSafeCounter();
      counter.update(value.panicsRecovered, value.process);
      this.#panics.set(target.id, counter);
    }
    // An instance that cannot be scraped now (restarting) keeps the count last seen.
    const result = Object.fromEntries(
      BACKENDS.map((service) => {
        const ids = instances.filter((i) => i.service === service).map((i) => i.id);
        const restarts = status.instances
          .filter((i) => ids.includes(i.id))
          .reduce((n, i) => n + i.restarts, 0);
        const panicsRecovered = ids.reduce((n, id) => n + (this.#panics.get(id)?.total() ?? 0), 0);
        return [service, { restarts, panicsRecovered }];
      }),
    );
    return result as Record<BackendName, ServiceCounters>;
  }

  async proxyRestarts(): Promise<Readonly<Record<string, ProxyCounters>>> {
    const status = await this.#status(this.#state());
    return Object.fromEntries(
      (status.proxies ?? []).map((p) => [
        p.fronts,
        { restarts: p.restarts, lastExitAt: p.lastExit?.at ?? null },
      ]),
    );
  }

  /** The supervisor's process, looked at twice a second: a lab whose supervisor is gone is gone. */
  watch(lost: (why: string) => void): () => void {
    const { pid } = this.#state();
    const timer = setInterval(() => {
      if (pidAlive(pid)) return;
      clearInterval(timer);
      lost(`its supervisor (pid ${pid}) is gone`);
    }, WATCH_EVERY_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  async release(): Promise<void> {
    const lab = this.#lab;
    this.#lab = undefined;
    if (!lab?.child) return;
    const wasRunning = lab.child.running();
    await lab.child.stop();
    this.#say(
      wasRunning
        ? `stopped the lab this run started (supervisor pid ${lab.child.pid})`
        : `the lab this run started (supervisor pid ${lab.child.pid}) had stopped before the end of the run`,
    );
  }
}

/** A Target over the local lab; constructing it starts and touches nothing. */
export function createLocalTarget(options: LocalTargetOptions = {}): Target {
  return new LocalTarget(options);
}
