/**
 * The open-model load generator (constant arrival rate, like k6's `constant-arrival-rate`).
 *
 * Arrival i of the run is *intended* at t0 + i / rate. At that instant one request goes to every target —
 * whether or not earlier requests have finished — so gateways are compared under the same load at the same
 * time, and a slow gateway cannot slow its own load down. Latency is measured from the intended time, not
 * from the moment the request actually left: if the generator itself was late (a busy event loop), that
 * delay is in the numbers too, instead of being silently omitted (coordinated omission).
 *
 * A generator that cannot keep the schedule says so: a send that finds its target's in-flight cap full is
 * dropped and counted, a send more than `lateThresholdMs` after its intended time is counted late, and a
 * run with drops, or with more than `maxLateShare` of its sends late, is marked `fellBehind` — the runner
 * then gives its claims no verdict.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { seededRandom } from '../../services/lib/random.ts';
import { DATASET } from '../../services/topology.ts';
import { classifyFailure, classifyResponse, type ResponseClass } from './classify.ts';
import type { PathFn } from './endpoints.ts';
import { createHttpTransport, type LoadTarget, type SendResult, type Transport } from './http-transport.ts';
import { Tally, type TallyStats } from './tally.ts';

export type { LoadTarget } from './http-transport.ts';

export interface LoadGeneratorOptions {
  /** Every target is sent the same requests at the same instants. */
  readonly targets: readonly LoadTarget[];
  /** Requests per second to each target. */
  readonly rate: number;
  /** The path of arrival i (the same for every target), e.g. `ENDPOINT_PATHS.video`. */
  readonly path: PathFn;
  /** A request without a complete response by then is a `timeout`. @default 2000 */
  readonly timeoutMs?: number;
  /** Requests in flight per target beyond which a send is dropped. @default rate × timeout (s) × 2, at least 8 */
  readonly maxInFlight?: number;
  /** A send later than this after its intended time is counted late. @default 50 */
  readonly lateThresholdMs?: number;
  /** The share of late sends above which the generator fell behind. @default 0.01 */
  readonly maxLateShare?: number;
  /** How often the scheduler catches up on due sends. @default 2 */
  readonly tickMs?: number;
  /** Sent with every request (besides `x-request-id`). @default none */
  readonly headers?: Readonly<Record<string, string>>;
  /** `x-request-id` is `<prefix>-<target>-<i>`, so the lab's requests are found in any log. @default `chaoslab-load-<random hex>` */
  readonly requestIdPrefix?: string;
  /** Monotonic milliseconds. @default performance.now */
  readonly clock?: () => number;
  /** Epoch milliseconds, only to stamp `startedAt`. @default Date.now */
  readonly wallClock?: () => number;
  /** Picks the request paths. @default seeded from DATASET.seed: the same sequence every run */
  readonly random?: () => number;
  /** @default HTTP with an undici Pool per target, `maxInFlight` connections each */
  readonly transport?: Transport;
  /**
   * How long the caller means to drive load, for a driver that must be told up front (k6 is started with a
   * duration); `stop` still ends the load. The built-in generator runs until `stop`. @default none
   */
  readonly plannedDurationMs?: number;
  /**
   * Called once if the load cannot go on (the k6 process died): the caller should end the run as failed and
   * still call `stop` for what was measured. The built-in generator runs in-process and never calls it.
   */
  readonly onFailure?: (error: Error) => void;
}

/** One target over a stretch of time. */
export interface TargetStats extends TallyStats {
  /** Sends per second of the stretch (what the generator achieved, whatever the outcomes). */
  readonly achievedRps: number;
  /** late / sent. */
  readonly lateShare: number;
  /** Dropped sends, or too many late ones: these numbers do not describe the target at the asked rate. */
  readonly fellBehind: boolean;
}

export interface WindowSummary {
  readonly name: string;
  /** From the start of the run. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly targets: Readonly<Record<string, TargetStats>>;
  readonly fellBehind: boolean;
}

/**
 * Each window's figures from its tallies (`byTarget`), from its start to its end (`end` for the one still
 * open); `t0` is the run's start. Shared by the built-in generator and the k6 driver.
 */
export function summariseWindows<T>(
  windows: readonly {
    readonly name: string;
    readonly start: number;
    readonly end: number | undefined;
    readonly tallies: T;
  }[],
  t0: number,
  end: number,
  byTarget: (tallies: T, durationMs: number) => Record<string, TargetStats>,
): WindowSummary[] {
  return windows.map((window) => {
    const windowMs = (window.end ?? end) - window.start;
    const stats = byTarget(window.tallies, windowMs);
    return {
      name: window.name,
      startMs: window.start - t0,
      durationMs: windowMs,
      targets: stats,
      fellBehind: Object.values(stats).some((s) => s.fellBehind),
    };
  });
}

/** Requests by the second of their intended time; reported once every one of them has an outcome. */
export interface SecondSummary {
  /** 0 for the run's first second. */
  readonly second: number;
  /** Shorter than 1000 for the run's last, cut-off second. */
  readonly durationMs: number;
  readonly targets: Readonly<Record<string, TargetStats>>;
}

export interface LoadSummary {
  readonly rate: number;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  readonly lateThresholdMs: number;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly durationMs: number;
  /** The whole run, per target. */
  readonly targets: Readonly<Record<string, TargetStats>>;
  /** In the order they were started (`start`, then each `mark`); names may repeat. */
  readonly windows: readonly WindowSummary[];
  readonly seconds: readonly SecondSummary[];
  readonly fellBehind: boolean;
  /** Why, target by target, e.g. `naive: 12 of 500 sends dropped (in-flight cap 200 full)`. */
  readonly fellBehindReason: string | undefined;
}

export interface LoadGenerator {
  /** Starts driving load; requests until the first `mark` belong to window `window`. */
  start(window?: string): void;
  /** Starts a new window: requests intended from now on are counted in it. */
  mark(window: string): void;
  /** Called for each second once all of its requests have an outcome (at most `timeoutMs` after it ends). */
  onSecond(listener: (second: SecondSummary) => void): () => void;
  /**
   * Stops sending. With `drain` (default) waits for requests in flight — each ends by its timeout — and
   * counts them; without, aborts them and counts them `cancelled` (Ctrl-C). Then closes the connections.
   */
  stop(options?: { readonly drain?: boolean }): Promise<LoadSummary>;
}

// Latency is measured from the intended send time, so a late send never hides latency; it only
// matters when the generator stops offering the asked load. On a shared two-core machine the
// event loop stalls 10–30 ms now and then (GC, the lab's own processes), so "late" starts at
// 50 ms: a send that late means the generator itself is the bottleneck.
const DEFAULTS = { timeoutMs: 2_000, lateThresholdMs: 50, maxLateShare: 0.01, tickMs: 2 } as const;
/** Extra time `stop` gives a transport that ignores its abort signal before giving up on it. */
const DRAIN_GRACE_MS = 1_000;

const TIMED_OUT = Symbol('timed out');
const CANCELLED = Symbol('cancelled');

interface TargetState {
  readonly target: LoadTarget;
  readonly index: number;
  readonly total: Tally;
  inFlight: number;
}

interface Window {
  readonly name: string;
  readonly start: number;
  end: number | undefined;
  readonly tallies: Tally[];
}

interface Second {
  readonly index: number;
  readonly tallies: Tally[];
  pending: number;
}

export function createLoadGenerator(options: LoadGeneratorOptions): LoadGenerator {
  const config = resolve(options);
  const { targets, rate, timeoutMs, maxInFlight, lateThresholdMs, clock } = config;
  const listeners = new Set<(second: SecondSummary) => void>();
  const states: TargetState[] = targets.map((target, index) => ({
    target,
    index,
    total: new Tally(),
    inFlight: 0,
  }));
  const windows: Window[] = [];
  const openSeconds: Second[] = [];
  const seconds: SecondSummary[] = [];
  const inFlight = new Set<{ controller: AbortController; done: Promise<void> }>();
  let transport: Transport | undefined;
  let t0 = 0;
  let startedAt = 0;
  let nextArrival = 0;
  let ticker: NodeJS.Timeout | undefined;
  let stopping: Promise<LoadSummary> | undefined;
  let listenerError: unknown;

  const intendedAt = (arrival: number) => t0 + (arrival * 1000) / rate;
  const newTallies = () => targets.map(() => new Tally());

  function tick(): void {
    const now = clock();
    // Catches up every due arrival, so a late tick sends late (and says so) rather than skipping any.
    for (let intended = intendedAt(nextArrival); intended <= now; intended = intendedAt(nextArrival)) {
      const window = windowAt(intended);
      const second = secondOf(nextArrival);
      const path = config.path(config.random);
      for (const state of states) send(state, nextArrival, intended, now, path, window, second);
      nextArrival++;
    }
    flushSeconds();
  }

  function windowAt(intended: number): Window {
    // Arrivals due before a `mark` but sent after it still belong to the window they were due in.
    for (let i = windows.length - 1; i > 0; i--) {
      const window = windows[i] as Window;
      if (window.start <= intended) return window;
    }
    return windows[0] as Window;
  }

  function secondOf(arrival: number): Second {
    // From the arrival number, not the clock: t0 + x - t0 need not be x in floating point.
    const index = Math.floor(arrival / rate);
    const last = openSeconds.at(-1);
    if (last && last.index === index) return last;
    const second: Second = { index, tallies: newTallies(), pending: 0 };
    openSeconds.push(second);
    return second;
  }

  function send(
    state: TargetState,
    arrival: number,
    intended: number,
    now: number,
    path: string,
    window: Window,
    second: Second,
  ): void {
    const tallies = [state.total, window.tallies[state.index] as Tally, second.tallies[state.index] as Tally];
    if (state.inFlight >= maxInFlight) {
      for (const tally of tallies) tally.dropped++;
      return;
    }
    const late = now - intended > lateThresholdMs;
    for (const tally of tallies) {
      tally.sent++;
      if (late) tally.late++;
    }
    state.inFlight++;
    second.pending++;

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(TIMED_OUT), timeoutMs);
    const request = {
      target: state.target,
      path,
      headers: {
        ...config.headers,
        'x-request-id': `${config.requestIdPrefix}-${state.target.name}-${arrival}`,
      },
      signal: controller.signal,
    };
    // A transport that throws instead of rejecting must not take the scheduler down with it.
    const sent = new Promise<SendResult>((resolve) => resolve((transport as Transport).send(request)));
    const outcome: Promise<ResponseClass | typeof CANCELLED> = sent.then(
      (response) => classifyResponse(response.status, response.degraded),
      (error: unknown) =>
        controller.signal.reason === CANCELLED
          ? CANCELLED
          : classifyFailure(error, controller.signal.reason === TIMED_OUT),
    );
    const entry = {
      controller,
      done: outcome.then((result) => {
        clearTimeout(timer);
        const latencyMs = clock() - intended;
        state.inFlight--;
        second.pending--;
        inFlight.delete(entry);
        for (const tally of tallies) {
          if (result === CANCELLED) tally.cancelled++;
          else tally.record(result, latencyMs);
        }
      }),
    };
    inFlight.add(entry);
  }

  /**
   * Reports, in order, the seconds whose arrivals are all sent and answered; with `runEnd`, every second
   * left (the run is over, the last one cut off there).
   */
  function flushSeconds(runEnd?: number): void {
    const final = runEnd !== undefined;
    const end = runEnd ?? Number.POSITIVE_INFINITY;
    while (openSeconds.length > 0) {
      const second = openSeconds[0] as Second;
      const secondEnd = t0 + (second.index + 1) * 1000;
      const complete = nextArrival / rate >= second.index + 1 && second.pending === 0;
      if (!final && !complete) return;
      openSeconds.shift();
      const durationMs = Math.min(1000, Math.max(0, Math.min(end, secondEnd) - (t0 + second.index * 1000)));
      const summary: SecondSummary = {
        second: second.index,
        durationMs,
        targets: byTarget(second.tallies, durationMs),
      };
      seconds.push(summary);
      for (const listener of listeners) {
        try {
          listener(summary);
        } catch (error) {
          // A progress display that throws must not stop the load; `stop` reports it.
          listenerError ??= error;
        }
      }
    }
  }

  function byTarget(tallies: readonly Tally[], durationMs: number): Record<string, TargetStats> {
    return Object.fromEntries(
      states.map((state) => [
        state.target.name,
        targetStats(tallies[state.index] as Tally, durationMs, config),
      ]),
    );
  }

  async function drain(): Promise<void> {
    const settled = Promise.all([...inFlight].map((entry) => entry.done));
    if (await settledWithin(settled, timeoutMs + DRAIN_GRACE_MS)) return;
    for (const entry of inFlight) entry.controller.abort(CANCELLED);
    await (transport as Transport).destroy();
    await settledWithin(settled, DRAIN_GRACE_MS);
  }

  async function finish(drainFirst: boolean): Promise<LoadSummary> {
    clearInterval(ticker);
    tick();
    const end = clock();
    (windows.at(-1) as Window).end = end;
    if (!drainFirst) for (const entry of inFlight) entry.controller.abort(CANCELLED);
    await drain();
    flushSeconds(end);
    await (transport as Transport).close();
    if (listenerError !== undefined) throw listenerError;

    const durationMs = end - t0;
    const total = byTarget(
      states.map((state) => state.total),
      durationMs,
    );
    const reasons = states.flatMap((state) =>
      behindReason(state.target.name, total[state.target.name], config),
    );
    return {
      rate,
      timeoutMs,
      maxInFlight,
      lateThresholdMs,
      startedAt,
      durationMs,
      targets: total,
      windows: summariseWindows(windows, t0, end, byTarget),
      seconds,
      fellBehind: reasons.length > 0,
      fellBehindReason: reasons.length > 0 ? reasons.join('; ') : undefined,
    };
  }

  return {
    start(window = 'main') {
      if (transport) throw new Error('the load generator was already started');
      transport = config.transport ?? createHttpTransport(targets, { connections: maxInFlight });
      t0 = clock();
      startedAt = config.wallClock();
      windows.push({ name: window, start: t0, end: undefined, tallies: newTallies() });
      ticker = setInterval(tick, config.tickMs);
      tick();
    },
    mark(window) {
      if (!transport || stopping) throw new Error('mark() needs a running load generator');
      const now = clock();
      (windows.at(-1) as Window).end = now;
      windows.push({ name: window, start: now, end: undefined, tallies: newTallies() });
    },
    onSecond(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop(stopOptions = {}) {
      if (!transport) return Promise.reject(new Error('stop() needs a started load generator'));
      stopping ??= finish(stopOptions.drain ?? true);
      return stopping;
    },
  };
}

function targetStats(
  tally: Tally,
  durationMs: number,
  config: { readonly maxLateShare: number },
): TargetStats {
  const stats = tally.stats();
  const lateShare = stats.sent === 0 ? 0 : stats.late / stats.sent;
  return {
    ...stats,
    achievedRps: durationMs > 0 ? stats.sent / (durationMs / 1000) : 0,
    lateShare,
    fellBehind: stats.dropped > 0 || lateShare > config.maxLateShare,
  };
}

function behindReason(
  name: string,
  stats: TargetStats | undefined,
  config: { readonly maxInFlight: number; readonly lateThresholdMs: number; readonly maxLateShare: number },
): string[] {
  if (!stats?.fellBehind) return [];
  const parts: string[] = [];
  const offered = stats.sent + stats.dropped;
  if (stats.dropped > 0) {
    parts.push(`${stats.dropped} of ${offered} sends dropped (in-flight cap ${config.maxInFlight} full)`);
  }
  if (stats.lateShare > config.maxLateShare) {
    parts.push(
      `${percent(stats.lateShare)} of sends more than ${config.lateThresholdMs} ms late (limit ${percent(
        config.maxLateShare,
      )})`,
    );
  }
  return [`${name}: ${parts.join(', ')}`];
}

function percent(share: number): string {
  return `${Number((share * 100).toFixed(1))}%`;
}

function resolve(options: LoadGeneratorOptions) {
  const rate = options.rate;
  if (!Number.isFinite(rate) || rate <= 0)
    throw new RangeError(`rate must be a positive number, got ${rate}`);
  if (options.targets.length === 0) throw new RangeError('at least one target is needed');
  const names = new Set(options.targets.map((t) => t.name));
  if (names.size !== options.targets.length) throw new RangeError('target names must be unique');
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
  // Room for every request of twice the timeout: only a target slower than its timeout, or a stalled
  // generator, fills it.
  const maxInFlight = options.maxInFlight ?? Math.max(8, Math.ceil(rate * (timeoutMs / 1000) * 2));
  if (!(maxInFlight >= 1)) throw new RangeError(`maxInFlight must be at least 1, got ${maxInFlight}`);
  return {
    targets: options.targets,
    rate,
    path: options.path,
    timeoutMs,
    maxInFlight,
    lateThresholdMs: options.lateThresholdMs ?? DEFAULTS.lateThresholdMs,
    maxLateShare: options.maxLateShare ?? DEFAULTS.maxLateShare,
    tickMs: options.tickMs ?? DEFAULTS.tickMs,
    headers: options.headers ?? {},
    requestIdPrefix: options.requestIdPrefix ?? `chaoslab-load-${randomBytes(3).toString('hex')}`,
    clock: options.clock ?? (() => performance.now()),
    wallClock: options.wallClock ?? Date.now,
    random: options.random ?? seededRandom(DATASET.seed),
    transport: options.transport,
  };
}

/** Whether `promise` settled within `ms` (it is left running either way). */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
