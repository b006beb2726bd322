import type { Express, Request, Response } from 'express';
import { errors, type LabError } from '../lib/errors.ts';
import { requestIdOf } from '../lib/service-app.ts';
import { BACKENDS, type BackendName, type Strategy } from '../topology.ts';
import { PageBudget, parseBudget, REQUEST_TIMEOUT_HEADER } from './deadline.ts';
import type { CallContext, DependencyCaller, Upstreams } from './dependency-caller.ts';
import type { LoopDelayDetector } from './loop-delay-detector.ts';
import { eventsCountedIn, type GatewayMetrics } from './metrics.ts';
import type { VideoPage } from './page.ts';
import { bulkhead } from './policies/bulkhead.ts';
import { chain, type Policy } from './policies/chain.ts';
import { shedOnLoopDelay } from './policies/loop-delay.ts';
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
  /** Told of every page asked for (the loop is watched only while there are some). */
  readonly onPage?: () => void;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Extra state for `/api/upstreams` (the resilient caller's breakers). */
  readonly describe?: () => Record<string, unknown>;
}

/** One page to assemble, as it travels through the admission policies. */
interface PageCall {
  readonly aid: number;
  readonly ctx: CallContext;
}

/** The gateway's API: the video page, and where its calls go. */
export function mountGatewayRoutes(app: Express, options: GatewayRoutesOptions): void {
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
  const admission = strategy === 'resilient' ? resilientAdmission(options, () => inFlight) : [];
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

  app.get('/api/video/:aid', async (req: Request, res: Response) => {
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
}

/**
 * The resilient gateway's admission, cheapest first: a loop running late refuses before anything
 * is counted, then the bulkhead bounds the pages in flight. Both answer 503 OVERLOADED, a
 * temporary error: the caller may try again shortly, or elsewhere.
 */
function resilientAdmission(
  options: GatewayRoutesOptions,
  inFlight: () => number,
): Policy<PageCall, Result<VideoPage>>[] {
  const events = eventsCountedIn(options.metrics);
  const { loopDelay, maxConcurrency } = options;
  const overloaded = (why: string): Result<VideoPage> => fail(errors.unavailable(OVERLOADED, why));
  return [
    ...(loopDelay
      ? [
          shedOnLoopDelay<PageCall, Result<VideoPage>>({
            detector: loopDelay,
            events,
            inFlight,
            minInFlight: options.loopDelayMinInFlight ?? 0,
            rejected: () => {
              const { delayMs, targetMs, intervalMs } = loopDelay.snapshot();
              return overloaded(
                `the gateway's event loop is running ${Math.round(delayMs)} ms late (more than ${targetMs} ms for ${intervalMs} ms: GATEWAY_LOOP_DELAY_TARGET_MS, GATEWAY_LOOP_DELAY_INTERVAL_MS); try again shortly`,
              );
            },
          }),
        ]
      : []),
    bulkhead<PageCall, Result<VideoPage>>({
      limit: maxConcurrency,
      events,
      rejected: () =>
        overloaded(
          `the gateway is assembling ${maxConcurrency} pages already (GATEWAY_MAX_CONCURRENCY); try again shortly`,
        ),
    }),
  ];
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
