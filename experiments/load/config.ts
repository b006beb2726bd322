/**
 * What the k6 scripts know about the lab, and how they read their environment (`k6 run -e NAME=value`).
 *
 * k6 runs these scripts in its own JavaScript runtime, not in Node: they cannot read services/topology.ts or
 * lab/local/layout.ts at run time, so the few facts they need are written down here, and a unit test
 * (lab/load/k6-scripts.test.ts) fails if they drift from those files. Nothing here imports k6 either, so
 * the same test can run it in Node.
 */

export interface Gateway {
  /** The gateway's strategy (`naive`, `parallel`, `resilient`): the `gateway` tag of every sample. */
  readonly name: string;
  /** Base URL; the page path is appended to it. */
  readonly url: string;
}

/** The local lab's gateways at its default port base (`npx chaos-lab up`). */
export const LAB_GATEWAYS: readonly Gateway[] = [
  { name: 'naive', url: 'http://127.0.0.1:18080' },
  { name: 'parallel', url: 'http://127.0.0.1:18081' },
  { name: 'resilient', url: 'http://127.0.0.1:18082' },
];

/** Videos every backend serves: aids first..first+count-1 (the data set's DATASET). */
export const VIDEO_IDS = { first: 1, count: 1_200 } as const;

/**
 * The lab's service level objective for the video page, per gateway: at least 99% of pages served (complete
 * or degraded — a degraded page is still a page), and p99 within the gateway's page budget of 800 ms (the
 * budget the resilient gateway carves its per-dependency deadlines from; a page slower than that is one the
 * gateway itself would have given up on).
 */
export const SLO = { successRate: 0.99, p99Ms: 800 } as const;

/** The rate the catalog's experiments drive each gateway at, and the generator's default timeout. */
export const DEFAULT_RATE = 30;
export const DEFAULT_TIMEOUT = '2s';

/** Response classes, with the names lab/load/classify.ts gives them. */
export type PageClass =
  | 'ok'
  | 'degraded'
  | '4xx'
  | `5xx:${number}`
  | `http:${number}`
  | 'timeout'
  | 'connection';

/**
 * The scripts' own metrics, every sample tagged with its `gateway`:
 * - `page_sent` (counter): added just before a request goes out, so its sample's time is the send time;
 * - `page_duration` (trend, ms): from the send to the end of the response, tagged with the response `class`:
 *   outcome and latency in one sample, which `chaos-lab run --driver k6` reads from k6's JSON output;
 * - `page_success` (rate): a page was served, complete or degraded; the SLO's success threshold.
 * Both samples of one request carry its x-request-id as the `rid` metadata.
 */
export const METRICS = { sent: 'page_sent', duration: 'page_duration', success: 'page_success' } as const;

/** The checks of every page request; their names are also the `check` tag of their samples. */
export const CHECKS = { status: 'status is 200', complete: 'page complete' } as const;

/** Classes the summaries count separately; anything else is counted as `other`. */
export const SUMMARY_CLASSES = [
  'ok',
  'degraded',
  '4xx',
  '5xx:500',
  '5xx:502',
  '5xx:503',
  '5xx:504',
  'timeout',
  'connection',
] as const;

/** k6's error code for a request that hit its `timeout` (k6 docs: "Error codes", 1050 Request timeout). */
const K6_REQUEST_TIMEOUT = 1050;

/**
 * The class of one page request, as the built-in generator classes it: a 2xx is `ok`, or `degraded` when the
 * gateway names missing parts in `x-degraded`; no response at all (k6 status 0) is `timeout` when k6's own
 * timeout fired, otherwise `connection` (refused, reset…).
 */
export function classifyPage(
  status: number,
  errorCode: number,
  degradedHeader: string | undefined,
): PageClass {
  if (status === 0) return errorCode === K6_REQUEST_TIMEOUT ? 'timeout' : 'connection';
  if (status >= 200 && status < 300) return degradedHeader?.trim() ? 'degraded' : 'ok';
  if (status >= 400 && status < 500) return '4xx';
  if (status >= 500 && status < 600) return `5xx:${status}`;
  return `http:${status}`;
}

/** The path of one request: a uniformly random video, as ENDPOINT_PATHS.video draws it. */
export function videoPath(random: () => number): string {
  return `/api/video/${VIDEO_IDS.first + Math.floor(random() * VIDEO_IDS.count)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Reading the environment. Every mistake names the variable and what would be valid: k6 shows the thrown
// message and exits 107 before sending anything.

type Env = Readonly<Record<string, string | undefined>>;

/** `GATEWAYS=naive=http://127.0.0.1:18080,resilient=http://127.0.0.1:18082`; unset: the local lab's three. */
export function gatewaysFrom(env: Env): Gateway[] {
  const text = env.GATEWAYS?.trim();
  if (!text) return [...LAB_GATEWAYS];
  const gateways = text.split(',').map((entry): Gateway => {
    const match = /^\s*([a-z][a-z0-9-]*)=(https?:\/\/[^\s,]+?)\/?\s*$/.exec(entry);
    if (!match) {
      throw new Error(
        `GATEWAYS: ${JSON.stringify(entry)} is not name=url; expected a comma-separated list such as ` +
          `naive=http://127.0.0.1:18080,resilient=http://127.0.0.1:18082`,
      );
    }
    return { name: match[1] as string, url: match[2] as string };
  });
  const names = gateways.map((g) => g.name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) throw new Error(`GATEWAYS: ${repeated} is listed twice; expected each gateway once`);
  return gateways;
}

/** A positive number of requests per second (or a count), `fallback` when unset. */
export function positiveFrom(env: Env, name: string, fallback: number, what: string): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(
      `${name}: ${JSON.stringify(text)} is not ${what}; expected a positive number, e.g. ${fallback}`,
    );
  }
  return value;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A duration with a unit (`300ms`, `1.5s`, `30s`, `2m`) — lab/duration.ts's grammar — in milliseconds. */
export function durationFrom(env: Env, name: string, fallback: string): number {
  const text = env[name]?.trim() || fallback;
  const match = DURATION.exec(text);
  const ms = match ? Number(match[1]) * (UNIT_MS[match[2] as string] as number) : Number.NaN;
  if (!(ms > 0)) {
    throw new Error(
      `${name}: ${JSON.stringify(text)} is not a duration; expected a number with a unit (ms, s, m, h), e.g. ${fallback}`,
    );
  }
  return Math.round(ms);
}

/**
 * k6's arrival rate is a whole number of iterations per `timeUnit`; a fractional rate (12.5 rps) is spread
 * over a longer unit so that the arrivals keep the same spacing.
 */
export function arrivalRate(perSecond: number): { rate: number; timeUnit: string } {
  if (Number.isInteger(perSecond)) return { rate: perSecond, timeUnit: '1s' };
  return { rate: Math.round(perSecond * 1_000), timeUnit: '1000s' };
}

/**
 * VUs to pre-allocate for one gateway. In k6's open model an iteration that finds no free VU is dropped (and
 * counted in `dropped_iterations`), so there must be one for every request that can be in flight: at worst
 * every request runs to its timeout, rate × timeout of them, plus a margin for the moments a VU is busy
 * recording. Allocating them up front keeps k6 from initialising VUs mid-test, when it competes with the
 * requests.
 */
export function vusFor(ratePerSecond: number, timeoutMs: number): number {
  return Math.ceil(ratePerSecond * (timeoutMs / 1_000) * 1.25) + 2;
}
