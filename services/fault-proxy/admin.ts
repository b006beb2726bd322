import express, { type ErrorRequestHandler, type Request, type Router } from 'express';
import { bearerAuth } from '../lib/admin-api.ts';
import { FAULT_ID_PATTERN, type LeaseBook } from '../lib/leases.ts';
import type { ServiceContext } from '../lib/service-app.ts';
import { invalidFault, invalidFaultId, type ProxyFaultKind, parseFault } from './faults.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { ProxyStats } from './stats.ts';

/**
 * The proxy's admin API, mounted at `/__chaos` on its admin port: the fault agent's paths,
 * bodies, lease semantics, token rules and error shape, so one client speaks to both.
 * Adds the calibration figures (`/stats`); has no worker settings.
 */

export interface AdminOptions {
  readonly ctx: ServiceContext;
  /** @default unset: the admin API answers 404 CHAOS_ADMIN_DISABLED */
  readonly token?: string;
  readonly book: LeaseBook<ProxyFaultKind, Readonly<Record<string, number>>>;
  readonly stats: ProxyStats;
  readonly metrics: ProxyMetrics;
  /** `host:port` of the one instance behind the proxy. */
  readonly upstream: string;
}

export function adminRouter(options: AdminOptions): Router {
  const { ctx, book, stats, metrics, upstream } = options;
  const router = express.Router();

  router.use(bearerAuth(options.token, 'proxy'));
  router.use(express.json());

  const identity = () => ({
    service: ctx.service,
    instance: ctx.instanceId,
    injector: 'fault-proxy',
    upstream,
  });

  router.get('/faults', (_req, res) => {
    res.json({ ...identity(), faults: book.list() });
  });

  router.put('/faults/:id', (req: Request<{ id: string }>, res) => {
    const { id } = req.params;
    if (!FAULT_ID_PATTERN.test(id)) throw invalidFaultId(id);
    const parsed = parseFault(req.body);
    if (!parsed.ok) throw parsed.error;
    const { kind, params, leaseMs } = parsed.value;
    const { lease, renewed } = book.apply(id, kind, params, leaseMs);
    (renewed ? metrics.renewed : metrics.applied).inc({ kind });
    req.log.info({ fault: lease, renewed }, 'fault applied');
    res.status(renewed ? 200 : 201).json({ fault: lease });
  });

  router.delete('/faults/:id', (req: Request<{ id: string }>, res) => {
    const removed = book.remove(req.params.id);
    if (removed) req.log.info({ id: req.params.id }, 'fault removed');
    res.json({ removed });
  });

  router.delete('/faults', (req, res) => {
    const removed = book.clear();
    req.log.info({ removed }, 'faults cleared');
    res.json({ removed });
  });

  router.get('/stats', (_req, res) => {
    res.json({ ...identity(), faults: book.list(), stats: stats.snapshot() });
  });

  // Read-and-reset, so that each phase of an experiment gets its own window.
  router.delete('/stats', (_req, res) => {
    res.json({ ...identity(), stats: stats.take() });
  });

  const malformed: ErrorRequestHandler = (err, _req, _res, next) => {
    if ((err as { type?: unknown }).type === 'entity.parse.failed') {
      next(invalidFault('body', `not valid JSON (${(err as Error).message})`));
      return;
    }
    next(err);
  };
  router.use(malformed);
  return router;
}
