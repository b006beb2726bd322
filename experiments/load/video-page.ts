/**
 * The video page at a constant arrival rate, every gateway side by side: one `constant-arrival-rate`
 * scenario per gateway (open model: a slow gateway does not slow its own load down), every sample tagged
 * with its `gateway`. k6 exits 99 when a gateway breaks the lab's SLO (see config.ts: success >= 99%, p99 <
 * 800 ms).
 *
 *   mkdir -p results/k6
 *   k6 run --no-usage-report experiments/load/video-page.ts     # the local lab's three gateways, 30 rps each, 30s
 *   k6 run --no-usage-report -e RATE=50 -e DURATION=1m -e GATEWAYS=resilient=http://127.0.0.1:18082 experiments/load/video-page.ts
 *
 * Environment (`-e NAME=value`):
 *   GATEWAYS  name=url,… (default naive, parallel and resilient at 127.0.0.1:18080–18082)
 *   RATE      requests per second to each gateway (default 30)
 *   DURATION  how long (default 30s)
 *   TIMEOUT   a page not answered by then is a timeout (default 2s)
 *   VUS       VUs per gateway (default enough for RATE × TIMEOUT requests in flight)
 *   SUMMARY   where the JSON summary goes (default results/k6/video-page-summary.json)
 *   REQUEST_ID_PREFIX  x-request-id prefix (default k6-video-page)
 */
import exec from 'k6/execution';
import type { Options } from 'k6/options';
import {
  arrivalRate,
  DEFAULT_RATE,
  DEFAULT_TIMEOUT,
  durationFrom,
  type Gateway,
  gatewaysFrom,
  positiveFrom,
  vusFor,
} from './config.ts';
import { requestPage } from './page.ts';
import {
  type K6SummaryData,
  lensThresholds,
  sloThresholds,
  TREND_STATS,
  videoPageDigest,
  videoPageText,
} from './summary.ts';

const gateways = gatewaysFrom(__ENV);
const byName = new Map<string, Gateway>(gateways.map((g) => [g.name, g]));
const rate = positiveFrom(__ENV, 'RATE', DEFAULT_RATE, 'a number of requests per second');
const durationMs = durationFrom(__ENV, 'DURATION', '30s');
const timeoutMs = durationFrom(__ENV, 'TIMEOUT', DEFAULT_TIMEOUT);
const vus = Math.ceil(positiveFrom(__ENV, 'VUS', vusFor(rate, timeoutMs), 'a number of VUs'));
const summaryFile = __ENV.SUMMARY || 'results/k6/video-page-summary.json';
const requestIdPrefix = __ENV.REQUEST_ID_PREFIX || 'k6-video-page';

export const options: Options = {
  scenarios: Object.fromEntries(
    gateways.map((g) => [
      g.name,
      {
        executor: 'constant-arrival-rate',
        ...arrivalRate(rate),
        duration: `${durationMs}ms`,
        preAllocatedVUs: vus,
        maxVUs: vus,
        // Every request ends by its timeout; k6 need not wait longer than that for the last ones.
        gracefulStop: `${timeoutMs}ms`,
        exec: 'videoPage',
        tags: { gateway: g.name },
      },
    ]),
  ),
  thresholds: { ...sloThresholds(gateways), ...lensThresholds(gateways) },
  summaryTrendStats: TREND_STATS,
};

export function videoPage(): void {
  requestPage(byName.get(exec.scenario.name) as Gateway, { timeout: `${timeoutMs}ms`, requestIdPrefix });
}

export function handleSummary(data: K6SummaryData): Record<string, string> {
  const digest = videoPageDigest(data, gateways, rate);
  return {
    stdout: videoPageText(digest, timeoutMs, summaryFile),
    [summaryFile]: `${JSON.stringify({ ...digest, k6: data }, null, 2)}\n`,
  };
}
