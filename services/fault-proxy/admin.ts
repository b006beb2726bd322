import type { Router } from 'express';
import { type FaultParams, leaseRouter } from '../lib/lease-router.ts';
import type { LeaseBook } from '../lib/leases.ts';
import type { ServiceContext } from '../lib/service-app.ts';
import { MAX_PROXY_FAULTS, PROXY_FAULT_PARAMS, type ProxyFaultKind } from './faults.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { ProxyStats } from './stats.ts';

/**
 * The proxy's admin API, mounted at `/__chaos` on its admin port: the fault agent's lease
 * routes (`lease-router.ts`), so one client speaks to both. Adds the calibration figures
 * (`/stats`); has no worker settings.
 */

export interface AdminOptions {
  readonly ctx: ServiceContext;
  /** @default unset: the admin API answers 404 CHAOS_ADMIN_DISABLED */
  readonly token?: string;
  readonly book: LeaseBook<ProxyFaultKind, FaultParams>;
  readonly stats: ProxyStats;
  readonly metrics: ProxyMetrics;
  /** `host:port` of the one instance behind the proxy. */
  readonly upstream: string;
}

export function adminRouter(options: AdminOptions): Router {
  const { ctx, book, stats, metrics, upstream } = options;

  const identity = () => ({
    service: ctx.service,
    instance: ctx.instanceId,
    injector: 'fault-proxy',
    upstream,
  });

  return leaseRouter({
    where: 'proxy',
    token: options.token,
    kinds: PROXY_FAULT_PARAMS,
    book,
    maxFaults: MAX_PROXY_FAULTS,
    listing: (faults) => ({ ...identity(), faults }),
    onApplied: (lease, renewed) => (renewed ? metrics.renewed : metrics.applied).inc({ kind: lease.kind }),
    extend(router) {
      router.get('/stats', (_req, res) => {
        res.json({ ...identity(), faults: book.list(), stats: stats.snapshot() });
      });

      // Read-and-reset, so that each phase of an experiment gets its own window.
      router.delete('/stats', (_req, res) => {
        res.json({ ...identity(), stats: stats.take() });
      });
    },
  });
}
