import type { Direction, LaneObserver, LatencyEffect, Retransmissions } from './emulation.ts';

/**
 * Calibration: what the proxy actually did, next to what was configured, because measured
 * latency is often 2-4× the configured one and nobody notices. Figures cover a window that
 * starts when the proxy starts or when they are read-and-reset (`take()`), so an experiment
 * can have one window per phase.
 */

/** Everything the proxy reports as it works; stats and metrics both listen. */
export interface ProxyObserver extends LaneObserver {
  accepted(): void;
  closed(): void;
  /** The upstream could not be reached (or failed) before the connection was through. */
  upstreamFailed(): void;
  bytes(direction: Direction, count: number): void;
  /** Loss was rolled for a new connection's SYN (only while a loss fault is in force). */
  syn(result: Retransmissions): void;
  /** A reset fault was rolled for a new connection (only while one is in force). */
  resetRolled(reset: boolean): void;
}

export function fanOut(...observers: ProxyObserver[]): ProxyObserver {
  return {
    accepted: () => {
      for (const o of observers) o.accepted();
    },
    closed: () => {
      for (const o of observers) o.closed();
    },
    upstreamFailed: () => {
      for (const o of observers) o.upstreamFailed();
    },
    bytes: (direction, count) => {
      for (const o of observers) o.bytes(direction, count);
    },
    syn: (result) => {
      for (const o of observers) o.syn(result);
    },
    resetRolled: (reset) => {
      for (const o of observers) o.resetRolled(reset);
    },
    released: (direction, holdMs, latency) => {
      for (const o of observers) o.released(direction, holdMs, latency);
    },
    segment: (direction, result) => {
      for (const o of observers) o.segment(direction, result);
    },
  };
}

export interface Summary {
  readonly count: number;
  readonly meanMs: number | null;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
}

/** Exact count, mean and max; percentiles over the most recent `capacity` samples. */
export class Samples {
  readonly #ring: Float64Array;
  #next = 0;
  #count = 0;
  #sum = 0;
  #max = Number.NEGATIVE_INFINITY;

  constructor(capacity = 8_192) {
    this.#ring = new Float64Array(capacity);
  }

  add(value: number): void {
    this.#ring[this.#next] = value;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  summary(): Summary {
    if (this.#count === 0)
      return { count: 0, meanMs: null, p50Ms: null, p95Ms: null, p99Ms: null, maxMs: null };
    const kept = this.#ring.slice(0, Math.min(this.#count, this.#ring.length)).sort();
    const at = (q: number) => round(kept[Math.min(kept.length - 1, Math.floor(q * kept.length))]!);
    return {
      count: this.#count,
      meanMs: round(this.#sum / this.#count),
      p50Ms: at(0.5),
      p95Ms: at(0.95),
      p99Ms: at(0.99),
      maxMs: round(this.#max),
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function share(part: number, whole: number): number | null {
  return whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;
}

export interface ProxyStatsSnapshot {
  /** The window these figures cover (epoch ms). */
  readonly since: number;
  readonly until: number;
  readonly connections: {
    readonly accepted: number;
    /** Open now (not windowed). */
    readonly active: number;
    readonly upstreamFailed: number;
  };
  readonly bytes: { readonly upstream: number; readonly downstream: number };
  /**
   * Chunks sent back to the client (responses) while latency was in force, and how long each was
   * held: a call's added latency on the way back.
   */
  readonly latency: Summary;
  /**
   * The same for chunks sent on to the backend (requests): a call's added latency on the way there,
   * 0 under a latency that delays responses only. Absent from a proxy that predates latency with a
   * direction (it delayed responses only).
   */
  readonly requestLatency?: Summary;
  readonly loss: {
    /** Chunk transmissions rolled while loss was in force, and how many were lost. */
    readonly segments: { readonly rolls: number; readonly lost: number; readonly share: number | null };
    readonly syns: { readonly rolls: number; readonly lost: number; readonly share: number | null };
    /** Time the losses cost in all (retransmission timeouts waited). */
    readonly addedMs: number;
    /** Events that reached the 30 s cap. */
    readonly capped: number;
  };
  readonly reset: { readonly rolls: number; readonly reset: number; readonly share: number | null };
}

export class ProxyStats implements ProxyObserver {
  readonly #clock: () => number;
  #since: number;
  #active = 0;
  #accepted = 0;
  #upstreamFailed = 0;
  #bytes = { upstream: 0, downstream: 0 };
  #latency = new Samples();
  #requestLatency = new Samples();
  #segments = { rolls: 0, lost: 0 };
  #syns = { rolls: 0, lost: 0 };
  #lossMs = 0;
  #capped = 0;
  #resets = { rolls: 0, reset: 0 };

  constructor(clock: () => number) {
    this.#clock = clock;
    this.#since = clock();
  }

  accepted(): void {
    this.#accepted++;
    this.#active++;
  }

  closed(): void {
    this.#active--;
  }

  upstreamFailed(): void {
    this.#upstreamFailed++;
  }

  bytes(direction: Direction, count: number): void {
    this.#bytes[direction] += count;
  }

  syn(result: Retransmissions): void {
    this.#count(this.#syns, result);
  }

  segment(_direction: Direction, result: Retransmissions): void {
    this.#count(this.#segments, result);
  }

  released(direction: Direction, holdMs: number, latency: LatencyEffect): void {
    // A way the faults leave alone counts too: its figure is then what they added there, nothing.
    if (latency === 'none') return;
    (direction === 'downstream' ? this.#latency : this.#requestLatency).add(holdMs);
  }

  resetRolled(reset: boolean): void {
    this.#resets.rolls++;
    if (reset) this.#resets.reset++;
  }

  #count(into: { rolls: number; lost: number }, result: Retransmissions): void {
    into.rolls += result.rolls;
    into.lost += result.lost;
    this.#lossMs += result.penaltyMs;
    if (result.capped) this.#capped++;
  }

  snapshot(): ProxyStatsSnapshot {
    return {
      since: this.#since,
      until: this.#clock(),
      connections: { accepted: this.#accepted, active: this.#active, upstreamFailed: this.#upstreamFailed },
      bytes: { ...this.#bytes },
      latency: this.#latency.summary(),
      requestLatency: this.#requestLatency.summary(),
      loss: {
        segments: { ...this.#segments, share: share(this.#segments.lost, this.#segments.rolls) },
        syns: { ...this.#syns, share: share(this.#syns.lost, this.#syns.rolls) },
        addedMs: round(this.#lossMs),
        capped: this.#capped,
      },
      reset: { ...this.#resets, share: share(this.#resets.reset, this.#resets.rolls) },
    };
  }

  /** The figures so far, and a new window from now (open connections stay counted as active). */
  take(): ProxyStatsSnapshot {
    const figures = this.snapshot();
    this.#since = this.#clock();
    this.#accepted = 0;
    this.#upstreamFailed = 0;
    this.#bytes = { upstream: 0, downstream: 0 };
    this.#latency = new Samples();
    this.#requestLatency = new Samples();
    this.#segments = { rolls: 0, lost: 0 };
    this.#syns = { rolls: 0, lost: 0 };
    this.#lossMs = 0;
    this.#capped = 0;
    this.#resets = { rolls: 0, reset: 0 };
    return figures;
  }
}
