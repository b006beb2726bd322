import type { RequestHandler } from 'express';
import { Counter } from 'prom-client';
import { LabError } from './errors.ts';
import { isInfraPath, type ServiceContext } from './service-app.ts';
import { clientIdentity, GATEWAY_IDENTITY } from './tls.ts';
import {
  abbreviate,
  NonceBook,
  TRUST_HEADERS,
  type TrustMode,
  type TrustRejection,
  type VerifyResult,
  verifyRequest,
} from './trust.ts';

/**
 * A backend's side of trust. Half trust: every call must carry the gateway's signature over
 * method, path, time, nonce and this service's name, and each signature is served once. Full
 * trust: the same, and the call must come over mutual TLS with the gateway's client
 * certificate (the TLS side of the port already ended the handshake of a client without one
 * from the lab's CA; this refuses what came in plain). Probes, scraping and the fault agent are exempt: the
 * platform, not the gateway, calls them.
 */

export interface TrustMiddlewareOptions {
  readonly ctx: ServiceContext;
  /** The mode in force now: the lab's, or a variant's override (read on every call). */
  readonly mode: TrustMode | (() => TrustMode);
  /** The shared HMAC key; required for half trust. */
  readonly key?: string;
  /** Whether this process listens with TLS; required for full trust. */
  readonly tls?: boolean;
  /** @default Date.now */
  readonly clock?: () => number;
}

const REASONS: Record<TrustRejection, string> = {
  missing: 'TRUST_MISSING',
  expired: 'TRUST_EXPIRED',
  forged: 'TRUST_FORGED',
  replayed: 'TRUST_REPLAYED',
  'untrusted-transport': 'TRUST_NEEDS_MTLS',
};

type Refusal = Extract<VerifyResult, { ok: false }>;

export function trustMiddleware(options: TrustMiddlewareOptions): RequestHandler {
  const { ctx, key } = options;
  const mode = typeof options.mode === 'function' ? options.mode : () => options.mode as TrustMode;
  checkCanServe(mode(), options);
  const clock = options.clock ?? Date.now;
  const nonces = new NonceBook();
  const rejected =
    (ctx.metrics.getSingleMetric('trust_rejected_total') as Counter<'reason'> | undefined) ??
    new Counter({
      name: 'trust_rejected_total',
      help: 'Calls refused by the trust mode: signature missing, expired, forged or replayed, or not over mutual TLS',
      labelNames: ['reason'] as const,
      registers: [ctx.metrics],
    });
  // At zero from the start, so a dashboard sees every reason before the first refusal.
  for (const reason of Object.keys(REASONS) as TrustRejection[]) rejected.inc({ reason }, 0);

  function check(inForce: TrustMode, req: Parameters<RequestHandler>[0]): Refusal | undefined {
    if (inForce === 'full') {
      const identity = clientIdentity(req.socket);
      if (identity !== GATEWAY_IDENTITY)
        return {
          ok: false,
          status: identity === undefined ? 401 : 403,
          reason: 'untrusted-transport',
          message:
            identity === undefined
              ? 'full trust: calls must come over mutual TLS with the gateway certificate'
              : `full trust: certificate ${JSON.stringify(identity)} is not the gateway's`,
        };
    }
    // originalUrl is the path and query exactly as the caller sent and signed them.
    const verdict = verifyRequest(
      key as string,
      req.headers,
      { method: req.method, path: req.originalUrl, audience: ctx.service },
      clock(),
    );
    if (!verdict.ok) return verdict;
    if (nonces.accept(verdict.nonce, verdict.nonceExpiresAt, clock())) return undefined;
    return {
      ok: false,
      status: 401,
      reason: 'replayed',
      message: 'signature was already used (a replayed call)',
    };
  }

  return (req, _res, next) => {
    const inForce = mode();
    if (inForce === 'zero' || isInfraPath(req.path)) {
      next();
      return;
    }
    const refusal = check(inForce, req);
    if (!refusal) {
      next();
      return;
    }
    rejected.inc({ reason: refusal.reason });
    req.log.warn(
      {
        trust: refusal.reason,
        caller: req.headers[TRUST_HEADERS.caller],
        nonce: abbreviate(req.headers[TRUST_HEADERS.nonce]),
        path: req.originalUrl,
      },
      `call refused (${inForce} trust)`,
    );
    next(
      new LabError({
        status: refusal.status,
        reason: REASONS[refusal.reason],
        message: refusal.message,
        metadata: { trustMode: inForce },
      }),
    );
  };
}

/** Refuses at start-up a mode this process could never check. */
export function checkCanServe(mode: TrustMode, options: Pick<TrustMiddlewareOptions, 'key' | 'tls'>): void {
  if (mode !== 'zero' && !options.key) {
    throw new Error(`trust mode ${mode} needs a key (TRUST_KEY) to verify signatures with`);
  }
  if (mode === 'full' && !options.tls) {
    throw new Error(
      'trust mode full needs the lab certificates (TLS_CA, TLS_CERT, TLS_KEY) to serve mutual TLS',
    );
  }
}
