/**
 * What the lab's instances and proxies say about themselves, read for counters and calibration:
 * an instance's /metrics (recovered panics, injected errors, requests), a proxy's statistics window,
 * and the figures calibration computes from them. Both targets read them the same way.
 */
import type { ProxyStatsSnapshot as ProxyStats } from '../../services/fault-proxy/stats.ts';
import { isInfraPath } from '../../services/lib/service-app.ts';
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
    requests: sumOf(
      samples,
      'http_server_request_duration_seconds_count',
      (l) => !isInfraPath(l.route ?? ''),
    ),
  };
}

/** The proxy figures the calibration is computed from, as sums so that windows can be subtracted. */
export interface ProxyTally {
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

export const ZERO_TALLY: ProxyTally = { latencyCount: 0, latencySumMs: 0, lossRolls: 0, lossLost: 0 };

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
