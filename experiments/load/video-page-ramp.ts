/**
 * A staircase of arrival rates to find each gateway's knee: the rate at which it stops meeting the lab's
 * SLO (success >= 99%, p99 < 800 ms; see config.ts). Gateways are ramped one after another, never at the
 * same time, so each has the machine to itself. One `ramping-arrival-rate` scenario per gateway holds each
 * step's rate for STEP_DURATION; every request is tagged with its step (`step_rps`), and the summary judges
 * the SLO step by step and names the knee.
 *
 *   mkdir -p results/k6
 *   k6 run --no-usage-report experiments/load/video-page-ramp.ts                # 3 gateways × 8 steps × 5s
 *   k6 run --no-usage-report -e GATEWAYS=resilient=http://127.0.0.1:18082 -e START_RPS=250 -e STEP_RPS=25 experiments/load/video-page-ramp.ts
 *
 * Going past the knee is the point, so a broken SLO does not fail the run: it exits 0 and the summary says
 * where the SLO broke.
 *
 * Environment (`-e NAME=value`):
 *   GATEWAYS       name=url,… (default naive, parallel and resilient at 127.0.0.1:18080–18082)
 *   START_RPS      the first step's rate, per second (default 50)
 *   STEP_RPS       added at each step (default 50)
 *   STEPS          how many steps (default 8: 50, 100, … 400 rps)
 *   STEP_DURATION  how long each step lasts (default 5s)
 *   TIMEOUT        a page not answered by then is a timeout (default 2s)
 *   SUMMARY        where the JSON summary goes (default results/k6/video-page-ramp-summary.json)
 *   REQUEST_ID_PREFIX  x-request-id prefix (default k6-ramp)
 */
import exec from 'k6/execution';
import type { Options } from 'k6/options';
import {
  DEFAULT_TIMEOUT,
  durationFrom,
  type Gateway,
  gatewaysFrom,
  positiveFrom,
  SLO,
  vusFor,
} from './config.ts';
import { requestPage } from './page.ts';
import {
  type K6SummaryData,
  lensThresholds,
  rampDigest,
  rampText,
  STEP_TAG,
  TREND_STATS,
} from './summary.ts';

const gateways = gatewaysFrom(__ENV);
const byName = new Map<string, Gateway>(gateways.map((g) => [g.name, g]));
const startRps = Math.round(positiveFrom(__ENV, 'START_RPS', 50, 'a number of requests per second'));
const stepRps = Math.round(positiveFrom(__ENV, 'STEP_RPS', 50, 'a number of requests per second'));
const steps = Math.round(positiveFrom(__ENV, 'STEPS', 8, 'a number of steps'));
const stepMs = durationFrom(__ENV, 'STEP_DURATION', '5s');
const timeoutMs = durationFrom(__ENV, 'TIMEOUT', DEFAULT_TIMEOUT);
const summaryFile = __ENV.SUMMARY || 'results/k6/video-page-ramp-summary.json';
const requestIdPrefix = __ENV.REQUEST_ID_PREFIX || 'k6-ramp';

const rates = Array.from({ length: steps }, (_, i) => startRps + i * stepRps);
const vus = vusFor(rates.at(-1) as number, SLO.p99Ms);
// A gateway's staircase, then room for its last requests to end, before the next gateway starts.
const perGatewayMs = steps * stepMs + timeoutMs + 1_000;

export const options: Options = {
  scenarios: Object.fromEntries(
    gateways.map((g, i) => [
      g.name,
      {
        executor: 'ramping-arrival-rate',
        startRate: startRps,
        timeUnit: '1s',
        // A zero-length stage jumps to its target: each step holds one rate for its whole length.
        stages: rates.flatMap((target) => [
          { target, duration: '0s' },
          { target, duration: `${stepMs}ms` },
        ]),
        startTime: `${i * perGatewayMs}ms`,
        gracefulStop: `${timeoutMs}ms`,
        // All up front: a VU initialised mid-test costs CPU just when the gateway needs it, and that alone
        // can topple a two-core machine past its knee. Enough for every request of the top step to take the
        // SLO's whole p99 budget; a gateway slower than that has broken the SLO anyway, and the arrivals k6
        // cannot start for want of a VU are counted in dropped_iterations.
        preAllocatedVUs: vus,
        maxVUs: vus,
        exec: 'rampStep',
        tags: { gateway: g.name },
      },
    ]),
  ),
  thresholds: lensThresholds(
    gateways,
    rates.map((rate) => ({ [STEP_TAG]: String(rate) })),
  ),
  summaryTrendStats: TREND_STATS,
};

export function rampStep(): void {
  const elapsed = Date.now() - exec.scenario.startTime;
  const step = Math.min(steps - 1, Math.max(0, Math.floor(elapsed / stepMs)));
  // A VU tag: every sample of this request (page_*, checks, http_req_*) says which step it belongs to.
  exec.vu.metrics.tags[STEP_TAG] = String(rates[step]);
  requestPage(byName.get(exec.scenario.name) as Gateway, { timeout: `${timeoutMs}ms`, requestIdPrefix });
}

export function handleSummary(data: K6SummaryData): Record<string, string> {
  const digest = rampDigest(data, gateways, rates, stepMs);
  return {
    stdout: rampText(digest, timeoutMs, summaryFile),
    [summaryFile]: `${JSON.stringify({ ...digest, k6: data }, null, 2)}\n`,
  };
}
