import { type AddressInfo, createServer, type Server } from 'node:net';
import type { Logger } from 'pino';
import { createLeaseBook } from '../lib/leases.ts';
import { createServiceApp, LISTEN_BACKLOG, listen, type ServiceContext } from '../lib/service-app.ts';
import { adminRouter } from './admin.ts';
import type { FaultProxyConfig } from './config.ts';
import { type Relay, relay } from './connection.ts';
import type { ProxyFault, ProxyFaultKind } from './faults.ts';
import { proxyMetrics } from './metrics.ts';
import { fanOut, ProxyStats, type ProxyStatsSnapshot } from './stats.ts';

/**
 * A fault proxy in front of one backend instance, as a sidecar would be: always in the
 * path, so baseline and fault phases are measured through the same hops. The data port is
 * raw TCP (an L4 relay, see `connection.ts` and `emulation.ts`); the admin port speaks HTTP.
 */

export interface FaultProxyDeps {
  /** Decides release times and lease expiry; timers run on real time, so it must move with it. @default Date.now */
  readonly clock?: () => number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** @default a pino logger to stdout at LOG_LEVEL */
  readonly log?: Logger;
  /** Whether its /metrics carries the process's own (CPU, memory, event loop). @default true */
  readonly processMetrics?: boolean;
}

export interface RunningFaultProxy {
  /** The port clients connect to. */
  readonly dataPort: number;
  readonly adminPort: number;
  /** Base URL of the admin API (`/__chaos/...`, `/healthz`, `/metrics`). */
  readonly adminUrl: string;
  readonly ctx: ServiceContext;
  /** Faults in force now. */
  faults(): readonly ProxyFault[];
  /** The calibration figures so far. */
  stats(): ProxyStatsSnapshot;
  /** Stops listening and ends every relayed connection. */
  close(): Promise<void>;
}

/** A logger handed in (tests, an embedding process) still says which proxy speaks. */
function identified(log: Logger, instanceId: string): Logger {
  return log.bindings().service === undefined
    ? log.child({ service: 'fault-proxy', instance: instanceId })
    : log;
}

function listenTcp(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startFaultProxy(
  config: FaultProxyConfig,
  deps: FaultProxyDeps = {},
): Promise<RunningFaultProxy> {
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const { app, ctx, finalize } = createServiceApp({
    service: 'fault-proxy',
    instanceId: config.instanceId,
    ...(deps.log ? { log: identified(deps.log, config.instanceId) } : {}),
    ...(deps.processMetrics === undefined ? {} : { processMetrics: deps.processMetrics }),
  });
  const upstream = `${config.upstream.host.includes(':') ? `[${config.upstream.host}]` : config.upstream.host}:${config.upstream.port}`;

  // The metrics read the book and the book counts expiries on the metrics: one is made first.
  let faults: () => readonly ProxyFault[] = () => [];
  const metrics = proxyMetrics(ctx.metrics, () => faults());
  const book = createLeaseBook<ProxyFaultKind, Readonly<Record<string, number>>>({
    clock,
    onExpire(lease) {
      metrics.expired.inc({ kind: lease.kind });
      ctx.log.info({ fault: lease }, 'fault lease expired');
    },
  });
  faults = () => book.list();
  const stats = new ProxyStats(clock);
  const observer = fanOut(stats, metrics);

  app.use(
    '/__chaos',
    adminRouter({
      ctx,
      ...(config.adminToken ? { token: config.adminToken } : {}),
      book,
      stats,
      metrics,
      upstream,
    }),
  );
  finalize();

  const relays = new Set<Relay>();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    const connection = relay(client, {
      upstream: config.upstream,
      clock,
      random,
      faults,
      observer,
      log: ctx.log,
    });
    relays.add(connection);
    void connection.closed.then(() => relays.delete(connection));
  });

  let dataPort: number;
  let admin: Awaited<ReturnType<typeof listen>>;
  try {
    dataPort = await listenTcp(server, config.listenPort, config.listenHost);
    admin = await listen(app, config.adminPort, config.listenHost);
  } catch (err) {
    server.close();
    book.close();
    throw err;
  }
  ctx.readiness.set(true);
  ctx.log.info({ dataPort, adminUrl: admin.url, upstream }, 'fault proxy listening');

  return {
    dataPort,
    adminPort: admin.port,
    adminUrl: admin.url,
    ctx,
    faults,
    stats: () => stats.snapshot(),
    async close() {
      ctx.readiness.set(false);
      book.close();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of relays) connection.destroy();
      await Promise.all([stopped, admin.close()]);
    },
  };
}
