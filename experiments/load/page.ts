/**
 * One video page request, and the metrics both scripts record for it (config.ts's METRICS). Every sample
 * carries the `gateway` tag (from its scenario's tags), so one script compares gateways side by side.
 *
 * Latency here is measured from the moment k6 actually sent the request. k6 starts each iteration on its
 * arrival-rate schedule, but if it starts one late (a busy machine) that delay is not in the figure — unlike
 * the built-in generator, which measures from the intended send time.
 */
import { check } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import { CHECKS, classifyPage, type Gateway, METRICS, videoPath } from './config.ts';

const pageSent = new Counter(METRICS.sent);
const pageDuration = new Trend(METRICS.duration, true);
const pageSuccess = new Rate(METRICS.success);

export interface PageRequestOptions {
  /** k6 duration, e.g. `2s`: a page not answered by then is a `timeout`. */
  readonly timeout: string;
  /** `x-request-id` is `<prefix>-<gateway>-<iteration>`, so the lab's logs show which request was whose. */
  readonly requestIdPrefix: string;
}

export function requestPage(gateway: Gateway, options: PageRequestOptions): void {
  const requestId = `${options.requestIdPrefix}-${gateway.name}-${exec.scenario.iterationInTest}`;
  // Metadata, not a tag: one value per request would make a tag set per request. It pairs a page_sent sample
  // with its page_duration sample in the JSON output.
  exec.vu.metrics.metadata.rid = requestId;
  pageSent.add(1);
  const sentAt = Date.now();
  const res = http.get(gateway.url + videoPath(Math.random), {
    timeout: options.timeout,
    headers: { 'x-request-id': requestId },
    // One name for every video id, or k6 would keep a time series per URL.
    tags: { name: 'GET /api/video/:aid' },
  });
  const degraded = res.headers['X-Degraded'];
  const outcome = classifyPage(res.status, res.error_code, degraded);
  const t = res.timings;
  // With a response, k6's own timers (sub-millisecond) from the wait for a connection to the last byte;
  // without one (refused, timed out) they may all be 0, so the wall clock says how long it took.
  const ms =
    res.status === 0 ? Date.now() - sentAt : t.blocked + t.connecting + t.tls_handshaking + t.duration;
  pageDuration.add(ms, { class: outcome });
  pageSuccess.add(outcome === 'ok' || outcome === 'degraded');
  check(
    res,
    {
      [CHECKS.status]: (r) => r.status === 200,
      [CHECKS.complete]: () => outcome === 'ok',
    },
    // `coin+vip`: which weak dependencies the page went without (`none` for a complete page, `-` for no page).
    { degraded: outcome === 'ok' ? 'none' : outcome === 'degraded' ? degradedParts(degraded) : '-' },
  );
}

function degradedParts(header: string | undefined): string {
  return (header ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .sort()
    .join('+');
}
