import type { Express, Request, Response } from 'express';
import type { Logger } from 'pino';
import { errors, type LabError } from '../lib/errors.ts';
import { type FrontDoor, REQUEST_ID_HEADER, requestIdFrom, requestIdOf } from '../lib/service-app.ts';
import { BACKENDS, type BackendName, type Strategy } from '../topology.ts';
import { PageBudget, parseBudget, REQUEST_TIMEOUT_HEADER } from './deadline.ts';
import type { CallContext, DependencyCaller, Upstreams } from './dependency-caller.ts';
import type { LoopDelayDetector } from './loop-delay-detector.ts';
import { eventsCountedIn, type GatewayMetrics } from './metrics.ts';
import type { VideoPage } from './page.ts';
import { bulkhead } from './policies/bulkhead.ts';
import { chain, type Policy } from './policies/chain.ts';
import { LoopDelayGate, shedOnLoopDelay } from './policies/loop-delay.ts';
import { fail, ok, type Result } from './result.ts';
import { STRATEGY_ASSEMBLERS } from './strategies.ts';
import type { UpstreamSnapshot } from './upstream.ts';

export const DEGRADED_HEADER = 'x-degraded';
export const STRATEGY_HEADER = 'x-strategy';
/** The reason of a page the resilient gateway refused to assemble (503): it sheds load. */
export const OVERLOADED = 'OVERLOADED';

export interface GatewayRoutesOptions {
  readonly strategy: Strategy;
  readonly caller: DependencyCaller;
  readonly upstreams: Upstreams;
  readonly metrics: GatewayMetrics;
  /** Page budget when the caller sends no `x-request-timeout`. */
  readonly budgetMs: number;
  /** Pages in flight before the resilient strategy sheds with 503 OVERLOADED. */
  readonly maxConcurrency: number;
  /** Resilient only: sheds with 503 OVERLOADED while the event loop runs late. @default no such shedding */
  readonly loopDelay?: Pick<LoopDelayDetector, 'shedding' | 'snapshot'>;
  /** Pages in flight below which a late loop refuses nothing. @default 0 */
  readonly loopDelayMinInFlight?: number;
  /** Resilient only: after a page shed for a late loop, pages are still shed this long while as many are in flight. @default 0 */
  readonly loopDelayHoldMs?: number;
  /** Told of every page asked for (the loop is watched only while there are some). */
  readonly onPage?: () => void;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Extra state for `/api/upstreams` (the resilient caller's breakers). */
  readonly describe?: () => Record<string, unknown>;
  /** Where the front door says, at most once a second, how many pages it refused. @default silent */
  readonly log?: Logger;
  /** Times a page refused at the front door in the service's request histogram. @default untimed */
  readonly timeRefusal?: (route: string, status: number, seconds: number) => void;
}

/** What the routes give back to the server: the resilient gateway's front door. */
export interface GatewayRoutes {
  readonly front?: FrontDoor;
}

/** One page to assemble, as it travels through the admission policies. */
interface PageCall {
  readonly aid: number;
  readonly ctx: CallContext;
}

/** The gateway's API: the video page, and where its calls go. */
export function mountGatewayRoutes(app: Express, options: GatewayRoutesOptions): GatewayRoutes {
  const { strategy, caller, metrics } = options;
  const clock = options.clock ?? Date.now;
  const assemble = STRATEGY_ASSEMBLERS[strategy];
  let inFlight = 0;
  const assembleCounted = async ({ aid, ctx }: PageCall): Promise<Result<VideoPage>> => {
    metrics.inflight.inc();
    inFlight += 1;
    try {
      return await assemble(aid, caller, ctx);
    } finally {
      metrics.inflight.dec();
      inFlight -= 1;
    }
  };
  // Only the resilient gateway sheds: the others show what happens without a limit.
  const gate =
    strategy === 'resilient' && options.loopDelay
      ? new LoopDelayGate({
          detector: options.loopDelay,
          inFlight: () => inFlight,
          minInFlight: options.loopDelayMinInFlight ?? 0,
          holdMs: options.loopDelayHoldMs ?? 0,
        })
      : undefined;
  const admission = strategy === 'resilient' ? resilientAdmission(options, gate) : [];
  const assemblePage = chain(...admission)(assembleCounted);

  const buildPage = async (req: Request): Promise<Result<VideoPage>> => {
    const aid = parseAid(req.params.aid);
    if (!aid.ok) return aid;
    const budgetMs = parseBudget(req.headers[REQUEST_TIMEOUT_HEADER], options.budgetMs);
    if (!budgetMs.ok) return budgetMs;
    const ctx = {
      requestId: requestIdOf(req),
      ...(strategy === 'resilient' ? { budget: new PageBudget(budgetMs.value, clock) } : {}),
    };
    options.onPage?.();
    return assemblePage({ aid: aid.value, ctx });
  };

  app.get(PAGE_ROUTE, async (req: Request, res: Response) => {
    res.setHeader(STRATEGY_HEADER, strategy);
    res.on('finish', () => {
      metrics.requests.inc({
        strategy,
        status: String(res.statusCode),
        degraded: res.hasHeader(DEGRADED_HEADER) ? 'true' : 'false',
      });
    });
    const page = await buildPage(req);
    if (!page.ok && page.error.reason === OVERLOADED) {
      // A refusal is answered here, in the error middleware's shape: thrown, it would be logged as
      // an error with its stack (formatted through source maps), which costs more than the refusal
      // saves when the gateway is out of CPU. gateway_shed_total counts it.
      res.status(page.error.status).json({ error: page.error.toJSON(), requestId: requestIdOf(req) });
      return;
    }
    if (!page.ok) throw page.error; // the edge: the service app's error middleware answers
    for (const dependency of page.value.degraded) metrics.degraded.inc({ dependency });
    if (page.value.degraded.length > 0) res.setHeader(DEGRADED_HEADER, page.value.degraded.join(','));
    res.json(page.value);
  });

  app.get('/api/upstreams', (_req: Request, res: Response) => {
    const upstreams = Object.fromEntries(BACKENDS.map((d) => [d, options.upstreams[d].snapshot()])) as Record<
      BackendName,
      UpstreamSnapshot[]
    >;
    res.json({ strategy, upstreams, ...options.describe?.() });
  });
  return strategy === 'resilient' ? { front: frontDoor(options, gate, () => inFlight) } : {};
}

/**
 * The resilient gateway's admission, cheapest first: a loop running late refuses before anything
 * is counted, then the bulkhead bounds the pages in flight. Both answer 503 OVERLOADED, a
 * temporary error: the caller may try again shortly, or elsewhere.
 */
function resilientAdmission(
  options: GatewayRoutesOptions,
  gate: LoopDelayGate | undefined,
): Policy<PageCall, Result<VideoPage>>[] {
  const events = eventsCountedIn(options.metrics);
  const { maxConcurrency } = options;
  return [
    ...(gate
      ? [
          shedOnLoopDelay<PageCall, Result<VideoPage>>({
            gate,
            events,
            rejected: () => fail(errors.unavailable(OVERLOADED, loopDelayWhy(options))),
          }),
        ]
      : []),
    bulkhead<PageCall, Result<VideoPage>>({
      limit: maxConcurrency,
      events,
      rejected: () => fail(errors.unavailable(OVERLOADED, bulkheadWhy(maxConcurrency))),
    }),
  ];
}

function loopDelayWhy(options: GatewayRoutesOptions): string {
  const { delayMs, targetMs, intervalMs } = (options.loopDelay as LoopDelayDetector).snapshot();
  return `the gateway's event loop is running ${Math.round(delayMs)} ms late (more than ${targetMs} ms for ${intervalMs} ms, or did within the last ${options.loopDelayHoldMs ?? 0} ms: GATEWAY_LOOP_DELAY_TARGET_MS, GATEWAY_LOOP_DELAY_INTERVAL_MS, GATEWAY_LOOP_DELAY_HOLD_MS); try again shortly`;
}

function bulkheadWhy(maxConcurrency: number): string {
  return `the gateway is assembling ${maxConcurrency} pages already (GATEWAY_MAX_CONCURRENCY); try again shortly`;
}

const PAGE_ROUTE = '/api/video/:aid';
/** A page with a valid aid (`parseAid`'s rule): anything else is express's to answer (400). */
const PAGE_PATH = /^\/api\/video\/[1-9]\d{0,14}(\?.*)?$/;

/**
 * The resilient gateway's front door: while admission would refuse a page, a request for one is
 * answered 503 OVERLOADED right here, from the raw request, with the body and headers the route
 * would give, counted in the same metrics. A refusal through express cost 0.6 ms of CPU (routing,
 * the request's log line, a thrown-and-caught error); at five times its capacity the gateway spent
 * more on refusing than on pages, and requests queued in front of it for seconds. Refusals are
 * logged as a count, at most once a second, not a line each.
 */
function frontDoor(
  options: GatewayRoutesOptions,
  gate: LoopDelayGate | undefined,
  inFlight: () => number,
): FrontDoor {
  const events = eventsCountedIn(options.metrics);
  const { maxConcurrency, metrics, log } = options;
  let refusedSinceLine = 0;
  let lastLineAt = Number.NEGATIVE_INFINITY;
  return (req, res) => {
    if (req.method !== 'GET' || !PAGE_PATH.test(req.url ?? '')) return false;
    if (!parseBudget(req.headers[REQUEST_TIMEOUT_HEADER], options.budgetMs).ok) return false;
    const began = performance.now();
    let message: string;
    if (gate?.refuses()) {
      events.emit({ type: 'loop-delay-rejected', delayMs: gate.delayMs() });
      message = loopDelayWhy(options);
    } else if (inFlight() >= maxConcurrency) {
      events.emit({ type: 'bulkhead-rejected', limit: maxConcurrency });
      message = bulkheadWhy(maxConcurrency);
    } else {
      return false; // an admitted page tells onPage in buildPage
    }
    options.onPage?.();
    // The body a LabError's toJSON gives (errors.unavailable), without making an Error and its stack.
    const refusal = { status: 503, reason: OVERLOADED, message, metadata: {} };
    const requestId = requestIdFrom(req);
    const body = JSON.stringify({ error: refusal, requestId });
    res.writeHead(refusal.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      [REQUEST_ID_HEADER]: requestId,
      [STRATEGY_HEADER]: 'resilient',
    });
    res.end(body);
    metrics.requests.inc({ strategy: 'resilient', status: String(refusal.status), degraded: 'false' });
    options.timeRefusal?.(PAGE_ROUTE, refusal.status, (performance.now() - began) / 1_000);
    refusedSinceLine += 1;
    if (log && began - lastLineAt >= 1_000) {
      log.warn(
        { refused: refusedSinceLine, reason: refusal.reason, requestId },
        `shedding: ${refusedSinceLine} page(s) refused since the last such line, the latest: ${refusal.message}`,
      );
      refusedSinceLine = 0;
      lastLineAt = began;
    }
    return true;
  };
}

/** The `:aid` of a page: a positive integer, nothing else. */
export function parseAid(raw: string | string[] | undefined): Result<number> {
  const text = Array.isArray(raw) ? raw[0] : raw;
  const value = /^[1-9]\d{0,14}$/.test(text ?? '') ? Number(text) : Number.NaN;
  if (Number.isSafeInteger(value)) return ok(value);
  return fail(invalidAid(text));
}

function invalidAid(text: string | undefined): LabError {
  return errors.badRequest(
    'INVALID_AID',
    `aid must be a positive integer, got ${JSON.stringify(text ?? '')}`,
    {
      field: 'aid',
    },
  );
}
