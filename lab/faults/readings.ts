/**
 * What the lab's instances and proxies say about themselves, read for counters and calibration:
 * an instance's /metrics (recovered panics, injected errors, requests), a proxy's statistics window,
 * and the figures calibration computes from them. Both targets read them the same way.
 */
import type { ProxyStatsSnapshot as ProxyStats, Summary } from '../../services/fault-proxy/stats.ts';
import { isInfraPath } from '../../services/lib/service-app.ts';
import { REQUEST_DURATION_METRIC } from '../../services/names.ts';
import { firstValue, type Sample, sumOf } from '../prom-text.ts';

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
export interface Reading {
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
    requests: sumOf(samples, `${REQUEST_DURATION_METRIC}_count`, (l) => !isInfraPath(l.route ?? '')),
  };
}

/** The proxy figures the calibration is computed from, as sums so that windows can be subtracted. */
export interface ProxyTally {
  /** Response chunks held while latency was in force, and the time they were held in all. */
  readonly latencyCount: number;
  readonly latencySumMs: number;
  /** The same for request chunks; absent: none (a proxy that predates latency with a direction). */
  readonly requestLatencyCount?: number;
  readonly requestLatencySumMs?: number;
  readonly lossRolls: number;
  readonly lossLost: number;
}

export function tallyOf(stats: ProxyStats): ProxyTally {
  const requests = stats.requestLatency;
  return {
    latencyCount: stats.latency.count,
    latencySumMs: (stats.latency.meanMs ?? 0) * stats.latency.count,
    ...(requests
      ? { requestLatencyCount: requests.count, requestLatencySumMs: (requests.meanMs ?? 0) * requests.count }
      : {}),
    lossRolls: stats.loss.segments.rolls + stats.loss.syns.rolls,
    lossLost: stats.loss.segments.lost + stats.loss.syns.lost,
  };
}

export const ZERO_TALLY: ProxyTally = { latencyCount: 0, latencySumMs: 0, lossRolls: 0, lossLost: 0 };

function round(value: number, places = 2): number {
  const f = 10 ** places;
  return Math.round(value * f) / f;
}

type ProxyWindow = { readonly now: ProxyStats; readonly base: ProxyTally };

/** One way's figures over the windows: the mean hold per chunk, and the jitter its spread implies. */
function latencyOneWay(
  windows: readonly ProxyWindow[],
  summary: (stats: ProxyStats) => Summary | undefined,
  baseOf: (tally: ProxyTally) => { readonly count: number; readonly sumMs: number },
): { count: number; meanMs: number; jitterMs: number | undefined } {
  let count = 0;
  let sum = 0;
  let p50 = 0;
  let p95 = 0;
  let all = 0;
  for (const { now, base } of windows) {
    const figures = summary(now);
    if (!figures) continue;
    const before = baseOf(base);
    count += figures.count - before.count;
    sum += (figures.meanMs ?? 0) * figures.count - before.sumMs;
    all += figures.count;
    p50 += (figures.p50Ms ?? 0) * figures.count;
    p95 += (figures.p95Ms ?? 0) * figures.count;
  }
  return {
    count: Math.max(0, count),
    meanMs: count > 0 ? sum / count : 0,
    jitterMs: all > 0 ? Math.max(0, (p95 - p50) / all / 0.9) : undefined,
  };
}

/**
 * Calibration of latency from the proxies' windows: the mean delay they added per chunk on each way
 * (`requestLatencyMs` to the backend, `responseLatencyMs` back), and per call (`addedLatencyMs`, the
 * two added up: a call pays both). When the windows are the fault's own (they began at the injection),
 * also the jitter a uniform ±J would need to give the spread seen between the median and the 95th
 * percentile (p95 − p50 = 0.9·J), added up over the two ways as the fault's jitter is split between
 * them. `samples` (chunks, both ways) says how much it rests on. A proxy that predates directions
 * delayed responses only and tells no ways apart: its figures are the responses', and no way is told.
 */
export function observedLatency(windows: readonly ProxyWindow[]): Record<string, number> {
  const responses = latencyOneWay(
    windows,
    (s) => s.latency,
    (t) => ({ count: t.latencyCount, sumMs: t.latencySumMs }),
  );
  const requests = latencyOneWay(
    windows,
    (s) => s.requestLatency,
    (t) => ({ count: t.requestLatencyCount ?? 0, sumMs: t.requestLatencySumMs ?? 0 }),
  );
  const samples = responses.count + requests.count;
  if (samples === 0) return { samples: 0 };
  const ownWindows = windows.every(({ base }) => base.latencyCount === 0 && !base.requestLatencyCount);
  const jitter = [responses.jitterMs, requests.jitterMs].filter((j) => j !== undefined);
  const observed: Record<string, number> = {
    addedLatencyMs: round(requests.meanMs + responses.meanMs),
    samples,
  };
  if (ownWindows && jitter.length > 0) observed.jitterMs = round(jitter.reduce((a, b) => a + b, 0));
  if (windows.some(({ now }) => now.requestLatency !== undefined)) {
    observed.requestLatencyMs = round(requests.meanMs);
    observed.responseLatencyMs = round(responses.meanMs);
  }
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
