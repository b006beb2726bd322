import type { Express, Request, Response } from 'express';
import { errors, type LabError } from '../lib/errors.ts';
import { requestIdOf } from '../lib/service-app.ts';
import { BACKENDS, type BackendName, type Strategy } from '../topology.ts';
import { PageBudget, parseBudget, REQUEST_TIMEOUT_HEADER } from './deadline.ts';
import type { CallContext, DependencyCaller, Upstreams } from './dependency-caller.ts';
import { eventsCountedIn, type GatewayMetrics } from './metrics.ts';
import type { VideoPage } from './page.ts';
import { bulkhead } from './policies/bulkhead.ts';
import { chain } from './policies/chain.ts';
import { fail, ok, type Result } from './result.ts';
import { STRATEGY_ASSEMBLERS } from './strategies.ts';
import type { UpstreamSnapshot } from './upstream.ts';

export const DEGRADED_HEADER = 'x-degraded';
export const STRATEGY_HEADER = 'x-strategy';

export interface GatewayRoutesOptions {
  readonly strategy: Strategy;
  readonly caller: DependencyCaller;
  readonly upstreams: Upstreams;
  readonly metrics: GatewayMetrics;
  /** Page budget when the caller sends no `x-request-timeout`. */
  readonly budgetMs: number;
  /** Pages in flight before the resilient strategy sheds with 503 OVERLOADED. */
  readonly maxConcurrency: number;
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
  const assembleCounted = async ({ aid, ctx }: PageCall): Promise<Result<VideoPage>> => {
    metrics.inflight.inc();
    try {
      return await assemble(aid, caller, ctx);
    } finally {
      metrics.inflight.dec();
    }
  };
  // Only the resilient gateway sheds: the others show what happens without a limit.
  const admission =
    strategy === 'resilient'
      ? [
          bulkhead<PageCall, Result<VideoPage>>({
            limit: options.maxConcurrency,
            events: eventsCountedIn(metrics),
            rejected: () =>
              fail(
                errors.unavailable(
                  'OVERLOADED',
                  `the gateway is assembling ${options.maxConcurrency} pages already (GATEWAY_MAX_CONCURRENCY); try again shortly`,
                ),
              ),
          }),
        ]
      : [];
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
