import type { RequestHandler } from 'express';
import { Counter } from 'prom-client';
import { LabError } from './errors.ts';
import { isInfraPath, type ServiceContext } from './service-app.ts';
import { TRUST_HEADERS, type TrustMode, type TrustRejection, verifyRequest } from './trust.ts';

/**
 * A backend's side of half (and, later, full) trust: every call must carry the gateway's
 * signature over method, path and time. Probes, scraping and the fault agent are exempt:
 * the platform, not the gateway, calls them.
 */

export interface TrustMiddlewareOptions {
  readonly ctx: ServiceContext;
  readonly mode: TrustMode;
  /** The shared HMAC key; required unless mode is `zero`. */
  readonly key?: string;
  /** @default Date.now */
  readonly clock?: () => number;
}

const REASONS: Record<TrustRejection, string> = {
  missing: 'TRUST_MISSING',
  expired: 'TRUST_EXPIRED',
  forged: 'TRUST_FORGED',
};

export function trustMiddleware(options: TrustMiddlewareOptions): RequestHandler {
  const { ctx, mode, key } = options;
  if (mode === 'zero') return (_req, _res, next) => next();
  if (!key) {
    throw new Error(`trust mode ${mode} needs a key (TRUST_KEY) to verify signatures with`);
  }
  const clock = options.clock ?? Date.now;
  const rejected =
    (ctx.metrics.getSingleMetric('trust_rejected_total') as Counter<'reason'> | undefined) ??
    new Counter({
      name: 'trust_rejected_total',
      help: 'Calls refused because their signature was missing, expired or forged',
      labelNames: ['reason'] as const,
      registers: [ctx.metrics],
    });
  // At zero from the start, so a dashboard sees every reason before the first refusal.
  for (const reason of Object.keys(REASONS) as TrustRejection[]) rejected.inc({ reason }, 0);

  return (req, _res, next) => {
    if (isInfraPath(req.path)) {
      next();
      return;
    }
    // originalUrl is the path and query exactly as the caller sent and signed them.
    const verdict = verifyRequest(key, req.headers, { method: req.method, path: req.originalUrl }, clock());
    if (verdict.ok) {
      next();
      return;
    }
    rejected.inc({ reason: verdict.reason });
    req.log.warn(
      { trust: verdict.reason, caller: req.headers[TRUST_HEADERS.caller], path: req.originalUrl },
      'call refused (half trust)',
    );
    next(
      new LabError({
        status: verdict.status,
        reason: REASONS[verdict.reason],
        message: verdict.message,
        metadata: { trustMode: mode },
      }),
    );
  };
}
