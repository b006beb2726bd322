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
 * Counters: restarts come from the supervisor (counted per instance since the lab started);
 * recovered panics from each instance's own `worker_panics_recovered_total`, which starts
 * again from zero when the process restarts. So that the cumulative figure never goes back,
 * each instance has a RestartSafeCounter: when its process changed (another
 * `process_start_time_seconds`) or its count went down, the last count seen of the old
 * process is kept as an offset. What the old process recovered after that last reading and
 * before it died is lost: it died with the process, as it would with a Prometheus scrape.
 */

import { isInfraPath } from '../../services/lib/service-app.ts';
import { BACKENDS, type BackendName, STRATEGIES, type Strategy } from '../../services/topology.ts';
import type { AgentView, ProxyStats, ProxyView } from '../admin-client.ts';
import {
  AdminError,
  type Target as AdminTarget,
  AgentClient,
  callJson,
  fetchLabStatus,
  isUnreachable,
  onEvery,
  ProxyClient,
} from '../admin-client.ts';
import { formatDuration } from '../duration.ts';
import { type ChildLab, startChildLab } from '../local/child-lab.ts';
import type { LabStatus } from '../local/control-server.ts';
import { progressLine, UP_DEFAULTS } from '../local/lab.ts';
import { DEFAULT_PORT_BASE, labLayout, portsOf } from '../local/layout.ts';
import { type LabState, labHome, lookupLab, removeState, type StateInstance } from '../local/state.ts';
import { firstValue, parsePromText, type Sample, sumOf } from '../prom-text.ts';
import type { Fault } from './experiment.ts';
import type { AppliedFault, Injector, LeftoverFault, ServiceCounters, Target, TargetInfo } from './target.ts';

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

/** The cumulative value of a counter that starts again from zero each time its process restarts. */
export class RestartSafeCounter {
  #offset = 0;
  #last = 0;
  #process: number | undefined;

  /**
   * Takes a reading of the counter and an identity of the process it came from (its start
   * time), and returns the cumulative count.
   */
  update(value: number, process: number): number {
    if (this.#process !== undefined && (process !== this.#process || value < this.#last)) {
      this.#offset += this.#last;
    }
    this.#process = process;
    this.#last = value;
    return this.total();
  }

  total(): number {
    return this.#offset + this.#last;
  }
}

/** What one scrape of an instance's /metrics says that the target uses. */
interface Reading {
  /** `process_start_time_seconds`: tells one process of the instance from the next. */
  readonly process: number;
  readonly panicsRecovered: number;
  readonly injectedErrors: number;
  /** Requests answered other than the probes, scrapes and admin calls. */
  readonly requests: number;
}

export function readingOf(samples: readonly Sample[]): Reading {
  return {
    process: firstValue(samples, 'process_start_time_seconds') ?? 0,
    panicsRecovered: sumOf(samples, 'worker_panics_recovered_total'),
    injectedErrors: sumOf(samples, 'chaos_injected_total', (l) => l.kind === 'http-error'),
    requests: sumOf(
      samples,
      'http_server_request_duration_seconds_count',
      (l) => !isInfraPath(l.route ?? ''),
    ),
  };
}

/** The proxy figures the calibration is computed from, as sums so that windows can be subtracted. */
interface ProxyTally {
  readonly latencyCount: number;
  readonly latencySumMs: number;
  readonly lossRolls: number;
  readonly lossLost: number;
}

export function tallyOf(stats: ProxyStats): ProxyTally {
  return {
    latencyCount: stats.latency.count,
    latencySumMs: (stats.latency.meanMs ?? 0) * stats.latency.count,
    lossRolls: stats.loss.segments.rolls + stats.loss.syns.rolls,
    lossLost: stats.loss.segments.lost + stats.loss.syns.lost,
  };
}

const ZERO_TALLY: ProxyTally = { latencyCount: 0, latencySumMs: 0, lossRolls: 0, lossLost: 0 };

function round(value: number, places = 2): number {
  const f = 10 ** places;
  return Math.round(value * f) / f;
}

/**
 * Calibration of latency from the proxies' windows: the mean delay they added per response
 * chunk and, when the window is the fault's own (it began at the injection), the jitter a
 * uniform ±J would need to give the spread seen between the median and the 95th percentile
 * (p95 − p50 = 0.9·J). `samples` says how much it rests on.
 */
export function observedLatency(
  windows: readonly { readonly now: ProxyStats; readonly base: ProxyTally }[],
): Record<string, number> {
  let count = 0;
  let sum = 0;
  let p50 = 0;
  let p95 = 0;
  let ownWindows = true;
  for (const { now, base } of windows) {
    const tally = tallyOf(now);
    count += tally.latencyCount - base.latencyCount;
    sum += tally.latencySumMs - base.latencySumMs;
    if (base.latencyCount > 0) ownWindows = false;
    p50 += (now.latency.p50Ms ?? 0) * now.latency.count;
    p95 += (now.latency.p95Ms ?? 0) * now.latency.count;
  }
  if (count <= 0) return { samples: 0 };
  const all = windows.reduce((n, w) => n + w.now.latency.count, 0);
  const observed: Record<string, number> = { addedLatencyMs: round(sum / count), samples: count };
  if (ownWindows && all > 0) observed.jitterMs = round(Math.max(0, (p95 - p50) / all / 0.9));
  return observed;
}

/** Calibration of loss: the share of transmissions (segments and SYNs) the proxies dropped. */
export function observedLoss(
  windows: readonly { readonly now: ProxyStats; readonly base: ProxyTally }[],
): Record<string, number> {
  let rolls = 0;
  let lost = 0;
  for (const { now, base } of windows) {
    const tally = tallyOf(now);
    rolls += tally.lossRolls - base.lossRolls;
    lost += tally.lossLost - base.lossLost;
  }
  return rolls > 0 ? { lossRate: round(lost / rolls, 4), samples: rolls } : { samples: 0 };
}

/**
 * Calibration of http-error: errors the agents injected over the requests they answered since
 * the injection. An instance that restarted in between counts from its new start.
 */
export function observedErrors(
  pairs: readonly { readonly now: Reading; readonly base: Reading | undefined }[],
): Record<string, number> {
  let injected = 0;
  let requests = 0;
  for (const { now, base } of pairs) {
    const fresh = !base || base.process !== now.process || now.requests < base.requests;
    injected += fresh ? now.injectedErrors : now.injectedErrors - base.injectedErrors;
    requests += fresh ? now.requests : now.requests - base.requests;
  }
  return requests > 0 ? { errorRate: round(injected / requests, 4), samples: requests } : { samples: 0 };
}

/** The injector's lease body for a fault; undefined for `kill`, which is no lease. */
export function leaseBody(
  fault: Fault,
  leaseMs: number,
): { kind: string; params: Record<string, number>; leaseMs: number } | undefined {
  switch (fault.kind) {
    case 'latency':
      return { kind: 'latency', params: { delayMs: fault.delayMs, jitterMs: fault.jitterMs }, leaseMs };
    case 'loss':
      return { kind: 'loss', params: { percent: fault.percent }, leaseMs };
    case 'http-error':
      return { kind: 'http-error', params: { status: fault.status, percent: fault.percent }, leaseMs };
    case 'worker-panic':
      return { kind: 'worker-panic', params: { percent: fault.percent }, leaseMs };
    case 'kill':
      return undefined;
  }
}

export function injectorOf(kind: Fault['kind']): Injector {
  switch (kind) {
    case 'latency':
    case 'loss':
      return 'fault-proxy';
    case 'http-error':
    case 'worker-panic':
      return 'fault-agent';
    case 'kill':
      return 'supervisor';
  }
}

/** One error for several failed calls, naming the first. */
export function combined(what: string, failed: readonly { error: Error }[]): Error {
  const first = failed[0]?.error.message ?? '';
  return new Error(
    failed.length === 1 ? `${what}: ${first}` : `${what}: ${failed.length} calls failed; first: ${first}`,
  );
}

/** Throws for refusals; an unreachable instance (down, restarting) is let go: see the callers. */
export function refusals(what: string, failed: readonly { error: AdminError }[]): void {
  const refused = failed.filter((f) => !isUnreachable(f.error));
  if (refused.length > 0) throw combined(what, refused);
}

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
  /** Per applied fault (`id@instance`): the agent's reading at injection, for http-error. */
  readonly #errorBase = new Map<string, Reading>();
  /** Per applied fault (`id@instance`): the proxy's figures at injection, for latency and loss. */
  readonly #proxyBase = new Map<string, ProxyTally>();
  /** Per proxy: the faults this target has on it now. */
  readonly #onProxy = new Map<string, Set<string>>();
  #settingsId: string | undefined;

  constructor(options: LocalTargetOptions) {
    this.#home = options.home ?? labHome();
    this.#portBase = options.portBase ?? DEFAULT_PORT_BASE;
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    this.#logLevel = options.logLevel ?? 'warn';
    this.#say = options.progress ?? (() => {});
  }

  unsupported(_kind: Fault['kind']): string | undefined {
    return undefined;
  }

  async prepare(progress: (line: string) => void, signal: AbortSignal): Promise<TargetInfo> {
    if (!this.#lab) this.#lab = await this.#findOrStart(progress, signal);
    return { name: 'local', gateways: this.#gateways(this.#lab.state) };
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

  #backendInstances(): StateInstance[] {
    return this.#state().instances.filter((i) => (BACKENDS as readonly string[]).includes(i.service));
  }

  /** The instances a fault names, or every instance of its service; unknown ids are an error. */
  #instancesOf(fault: Fault): StateInstance[] {
    const ofService = this.#state().instances.filter((i) => i.service === fault.service);
    if (fault.instances.length === 0) return ofService;
    return fault.instances.map((id) => {
      const found = ofService.find((i) => i.id === id);
      if (!found) {
        throw new Error(
          `no instance ${id} of ${fault.service} in the local lab; it has ${ofService.map((i) => i.id).join(', ')}`,
        );
      }
      return found;
    });
  }

  #agent(instance: string): AdminTarget {
    const found = this.#state().instances.find((i) => i.id === instance);
    if (!found) throw new Error(`no instance ${instance} in the local lab`);
    return { id: found.id, url: found.url };
  }

  #proxy(instance: string): AdminTarget {
    const found = this.#state().proxies?.find((p) => p.instance === instance);
    if (!found) throw new Error(`no fault proxy in front of ${instance} in the local lab`);
    return { id: found.id, url: found.adminUrl };
  }

  #endpoint(applied: AppliedFault): AdminTarget {
    return applied.injector === 'fault-proxy' ? this.#proxy(applied.instance) : this.#agent(applied.instance);
  }

  #client(injector: Injector): AgentClient | ProxyClient {
    const token = this.#state().adminToken;
    return injector === 'fault-proxy' ? new ProxyClient(token) : new AgentClient(token);
  }

  async #scrape(target: AdminTarget): Promise<Reading> {
    return readingOf(parsePromText(await fetchText(`${target.url}/metrics`)));
  }

  async applySettings(settings: { readonly workerRecovery?: boolean }, leaseMs: number, id: string) {
    const { workerRecovery } = settings;
    if (workerRecovery === undefined) return;
    this.#settingsId = id;
    const agents = new AgentClient(this.#state().adminToken);
    const targets = this.#backendInstances().map((i) => this.#agent(i.id));
    const { failed } = await onEvery(targets, (t) => agents.setRecovery(t, workerRecovery, leaseMs));
    // An instance restarting (a panic without recovery) gets the override at the next renewal.
    refusals(`settings ${id} (workerRecovery ${workerRecovery ? 'on' : 'off'})`, failed);
  }

  async clearSettings(): Promise<void> {
    const agents = new AgentClient(this.#state().adminToken);
    const targets = this.#backendInstances().map((i) => this.#agent(i.id));
    const { failed } = await onEvery(targets, (t) => agents.resetSettings(t));
    refusals('clearing the settings', failed);
    this.#settingsId = undefined;
  }

  async inject(fault: Fault, id: string, leaseMs: number): Promise<AppliedFault[]> {
    const instances = this.#instancesOf(fault);
    const injector = injectorOf(fault.kind);
    const injectedAt = new Date().toISOString();
    const applied = instances.map((i): AppliedFault => ({ fault, instance: i.id, injector, id, injectedAt }));
    const body = leaseBody(fault, leaseMs);
    if (!body) {
      await this.#kill(instances.map((i) => i.id));
      return applied;
    }
    if (injector === 'fault-proxy') await this.#rememberProxyBase(applied);
    const client = this.#client(injector);
    const targets = applied.map((a) => ({ ...this.#endpoint(a), applied: a }));
    const { ok, failed } = await onEvery(targets, (t) => client.put(t, id, body));
    if (failed.length > 0) {
      // All or nothing: a fault on half the instances would make any measurement misleading.
      await onEvery(
        ok.filter((o) => o.value.created).map((o) => o.target),
        (t) => client.remove(t, id),
      );
      this.#forget(applied);
      throw combined(`injecting ${fault.kind} ${id} on ${fault.service}`, failed);
    }
    if (fault.kind === 'http-error') {
      // Read once the leases are on: every request the agents answer from here on met the fault
      // (but for the few in flight now), so the observed share is the configured one.
      try {
        await this.#rememberErrorBase(applied);
      } catch (err) {
        await onEvery(targets, (t) => client.remove(t, id));
        this.#forget(applied);
        throw err;
      }
    }
    for (const a of applied) {
      if (a.injector !== 'fault-proxy') continue;
      const key = this.#proxy(a.instance).id;
      const on = this.#onProxy.get(key) ?? new Set<string>();
      on.add(`${a.id}@${a.instance}`);
      this.#onProxy.set(key, on);
    }
    return applied;
  }

  async #kill(instances: readonly string[]): Promise<void> {
    const state = this.#state();
    const control = { id: 'supervisor', url: state.controlUrl };
    const results = await Promise.allSettled(
      instances.map((id) =>
        callJson(control, state.adminToken, 'POST', `/instances/${encodeURIComponent(id)}/kill`),
      ),
    );
    // 409: it is down already (backing off after a crash), which is what a kill asks for.
    const failed = results.flatMap((r) =>
      r.status === 'rejected' && !(r.reason instanceof AdminError && r.reason.status === 409)
        ? [{ error: r.reason as Error }]
        : [],
    );
    if (failed.length > 0) throw combined(`killing ${instances.join(', ')}`, failed);
  }

  async #rememberErrorBase(applied: readonly AppliedFault[]): Promise<void> {
    const { ok, failed } = await onEvery(
      applied.map((a) => ({ ...this.#agent(a.instance), key: `${a.id}@${a.instance}` })),
      (t) => this.#scrape(t),
    );
    if (failed.length > 0) throw combined('reading the metrics before an http-error', failed);
    for (const o of ok) this.#errorBase.set(o.target.key, o.value);
  }

  /**
   * A proxy's statistics window starts afresh at the injection, unless another fault of this
   * run is on that proxy: then its figures so far are kept as the baseline to subtract.
   */
  async #rememberProxyBase(applied: readonly AppliedFault[]): Promise<void> {
    const proxies = new ProxyClient(this.#state().adminToken);
    const targets = applied.map((a) => ({ ...this.#proxy(a.instance), key: `${a.id}@${a.instance}` }));
    const { ok, failed } = await onEvery(targets, async (t) => {
      if ((this.#onProxy.get(t.id)?.size ?? 0) === 0) {
        await proxies.takeStats(t);
        return ZERO_TALLY;
      }
      return tallyOf(await proxies.stats(t));
    });
    if (failed.length > 0) throw combined('resetting the fault proxies statistics', failed);
    for (const o of ok) this.#proxyBase.set(o.target.key, o.value);
  }

  #forget(applied: readonly AppliedFault[]): void {
    for (const a of applied) {
      if (a.injector !== 'fault-proxy') continue;
      this.#onProxy.get(this.#proxy(a.instance).id)?.delete(`${a.id}@${a.instance}`);
    }
  }

  /**
   * Renews every lease; re-creates it on an instance that restarted in the meantime (faults
   * live in the process). An instance that cannot be reached right now (restarting) is left
   * for the next renewal; a refusal is an error.
   */
  async renew(applied: readonly AppliedFault[], leaseMs: number): Promise<void> {
    const leases = applied.filter((a) => a.injector !== 'supervisor');
    const results = await Promise.all(
      (['fault-agent', 'fault-proxy'] as const).map((injector) => {
        const client = this.#client(injector);
        const mine = leases.filter((a) => a.injector === injector);
        return onEvery(
          mine.map((a) => ({ ...this.#endpoint(a), applied: a })),
          (t) => client.put(t, t.applied.id, leaseBody(t.applied.fault, leaseMs)!),
        );
      }),
    );
    refusals(
      'renewing the fault leases',
      results.flatMap((r) => r.failed),
    );
  }

  async remove(applied: readonly AppliedFault[]): Promise<void> {
    const leases = applied.filter((a) => a.injector !== 'supervisor');
    const results = await Promise.all(
      (['fault-agent', 'fault-proxy'] as const).map((injector) => {
        const client = this.#client(injector);
        const mine = leases.filter((a) => a.injector === injector);
        return onEvery(
          mine.map((a) => ({ ...this.#endpoint(a), applied: a })),
          (t) => client.remove(t, t.applied.id),
        );
      }),
    );
    this.#forget(leases);
    // An unreachable instance lost its faults with its process, or will when its lease ends.
    refusals(
      'removing the faults',
      results.flatMap((r) => r.failed),
    );
  }

  async counters(): Promise<Readonly<Record<BackendName, ServiceCounters>>> {
    const state = this.#state();
    const instances = this.#backendInstances();
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

  async observe(applied: readonly AppliedFault[]): Promise<Readonly<Record<string, number>>> {
    const kinds = new Set(applied.map((a) => a.fault.kind));
    const observed: Record<string, number> = {};
    for (const kind of kinds) {
      const mine = applied.filter((a) => a.fault.kind === kind);
      if (kind === 'latency' || kind === 'loss') {
        const proxies = new ProxyClient(this.#state().adminToken);
        const { ok, failed } = await onEvery(
          mine.map((a) => ({ ...this.#proxy(a.instance), key: `${a.id}@${a.instance}` })),
          (t) => proxies.stats(t),
        );
        if (failed.length > 0) throw combined(`observing ${kind}`, failed);
        const windows = ok.map((o) => ({
          now: o.value,
          base: this.#proxyBase.get(o.target.key) ?? ZERO_TALLY,
        }));
        Object.assign(observed, kind === 'latency' ? observedLatency(windows) : observedLoss(windows));
      }
      if (kind === 'http-error') {
        const { ok, failed } = await onEvery(
          mine.map((a) => ({ ...this.#agent(a.instance), key: `${a.id}@${a.instance}` })),
          (t) => this.#scrape(t),
        );
        if (failed.length > 0) throw combined('observing http-error', failed);
        Object.assign(
          observed,
          observedErrors(ok.map((o) => ({ now: o.value, base: this.#errorBase.get(o.target.key) }))),
        );
      }
    }
    return observed;
  }

  async audit(): Promise<LeftoverFault[]> {
    const state = this.#state();
    const agents = new AgentClient(state.adminToken);
    const proxies = new ProxyClient(state.adminToken);
    const agentTargets = state.instances.map((i) => ({ id: i.id, url: i.url, instance: i.id }));
    const proxyTargets = (state.proxies ?? []).map((p) => ({
      id: p.id,
      url: p.adminUrl,
      instance: p.instance,
    }));
    const leftovers: LeftoverFault[] = [];
    let pending: { agents: typeof agentTargets; proxies: typeof proxyTargets } = {
      agents: agentTargets,
      proxies: proxyTargets,
    };
    let failed: { error: AdminError }[] = [];
    // An instance restarting cannot answer for a second or two; it has no faults, but that
    // is only known once it answers.
    for (let attempt = 0; attempt < 4; attempt++) {
      if (attempt > 0) await sleep(1_000);
      const [a, p] = await Promise.all([
        onEvery(pending.agents, (t) => agents.view(t)),
        onEvery(pending.proxies, (t) => proxies.view(t)),
      ]);
      for (const { target, value } of a.ok) leftovers.push(...this.#leftoversOfAgent(target.instance, value));
      for (const { target, value } of p.ok) leftovers.push(...leftoversOfProxy(target.instance, value));
      failed = [...a.failed, ...p.failed];
      pending = { agents: a.failed.map((f) => f.target), proxies: p.failed.map((f) => f.target) };
      if (failed.length === 0 || failed.some((f) => !isUnreachable(f.error))) break;
    }
    if (failed.length > 0) throw combined('auditing the lab for leftover faults', failed);
    return leftovers;
  }

  #leftoversOfAgent(instance: string, view: AgentView): LeftoverFault[] {
    return leftoversOfAgent(instance, view, this.#settingsId);
  }

  async clearAll(): Promise<void> {
    const state = this.#state();
    const agents = new AgentClient(state.adminToken);
    const proxies = new ProxyClient(state.adminToken);
    const [a, p] = await Promise.all([
      onEvery(
        state.instances.map((i) => ({ id: i.id, url: i.url })),
        (t) => agents.clear(t),
      ),
      onEvery(
        (state.proxies ?? []).map((x) => ({ id: x.id, url: x.adminUrl })),
        (t) => proxies.clear(t),
      ),
    ]);
    this.#onProxy.clear();
    this.#settingsId = undefined;
    // Clearing also drops the settings overrides (the agents' DELETE /__chaos/faults does both).
    refusals('clearing every fault', [...a.failed, ...p.failed]);
  }

  async release(): Promise<void> {
    const lab = this.#lab;
    this.#lab = undefined;
    this.#onProxy.clear();
    this.#proxyBase.clear();
    this.#errorBase.clear();
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

/** An agent's faults and settings override as leftovers; `settingsId` names the override when known. */
export function leftoversOfAgent(
  instance: string,
  view: AgentView,
  settingsId: string | undefined,
): LeftoverFault[] {
  const faults = view.faults.map(
    (f): LeftoverFault => ({ instance, injector: 'fault-agent', id: f.id, kind: f.kind }),
  );
  if (!view.settings.overridden) return faults;
  return [
    ...faults,
    {
      instance,
      injector: 'fault-agent',
      id: settingsId ?? 'settings',
      kind: `settings (workerRecovery ${view.settings.workerRecovery ? 'on' : 'off'})`,
    },
  ];
}

function leftoversOfProxy(instance: string, view: ProxyView): LeftoverFault[] {
  return view.faults.map((f) => ({ instance, injector: 'fault-proxy', id: f.id, kind: f.kind }));
}

/** A Target over the local lab; constructing it starts and touches nothing. */
export function createLocalTarget(options: LocalTargetOptions = {}): Target {
  return new LocalTarget(options);
}
