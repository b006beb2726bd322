import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for a fault agent or a fault proxy on loopback: the admin API's routes with
 * leases kept in a map (no expiry), the settings override (agents only), the stats window
 * (proxies only) and a `/metrics` text the test sets. Every call is recorded, and a test can
 * make it refuse PUTs (400) or scrapes (503), or stop answering.
 */

export interface FakeLease {
  id: string;
  kind: string;
  params: Record<string, number>;
  leaseMs: number;
  appliedAt: number;
  expiresAt: number;
}

export interface FakeInjector {
  readonly role: 'agent' | 'proxy';
  readonly id: string;
  readonly url: string;
  readonly port: number;
  readonly calls: string[];
  readonly faults: Map<string, FakeLease>;
  settings: { workerRecovery: boolean; overridden: boolean; expiresAt: number | null };
  /** What `GET /__chaos/stats` answers, under `stats`. */
  stats: unknown;
  metrics: string;
  refusePuts: boolean;
  refuseMetrics: boolean;
  close(): Promise<void>;
}

export async function startFakeInjector(role: 'agent' | 'proxy', id: string): Promise<FakeInjector> {
  const fake: Omit<FakeInjector, 'url' | 'port' | 'close'> = {
    role,
    id,
    calls: [],
    faults: new Map(),
    settings: { workerRecovery: true, overridden: false, expiresAt: null },
    stats: {},
    metrics: '',
    refusePuts: false,
    refuseMetrics: false,
  };
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      const url = req.url ?? '';
      fake.calls.push(`${req.method} ${url}`);
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      const send = (status: number, answer: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      };
      if (url === '/metrics' && fake.refuseMetrics) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('not ready');
        return;
      }
      if (url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(fake.metrics);
        return;
      }
      const one = /^\/__chaos\/faults\/([^/]+)$/.exec(url);
      if (req.method === 'GET' && url === '/__chaos/faults') {
        const listing = {
          service: id.replace(/-\d+(-proxy)?$/, ''),
          instance: id,
          faults: [...fake.faults.values()],
        };
        return send(
          200,
          role === 'agent'
            ? { ...listing, settings: fake.settings }
            : { ...listing, injector: 'fault-proxy', upstream: '127.0.0.1:1' },
        );
      }
      if (req.method === 'PUT' && one) {
        if (fake.refusePuts) {
          return send(400, {
            error: { status: 400, reason: 'INVALID_FAULT', message: 'params.percent: no' },
          });
        }
        const existed = fake.faults.has(one[1] as string);
        const lease: FakeLease = {
          id: one[1] as string,
          kind: body.kind as string,
          params: body.params as Record<string, number>,
          leaseMs: body.leaseMs as number,
          appliedAt: 1,
          expiresAt: Date.now() + (body.leaseMs as number),
        };
        fake.faults.set(lease.id, lease);
        return send(existed ? 200 : 201, { fault: lease });
      }
      if (req.method === 'DELETE' && one) return send(200, { removed: fake.faults.delete(one[1] as string) });
      if (req.method === 'DELETE' && url === '/__chaos/faults') {
        const removed = fake.faults.size;
        fake.faults.clear();
        fake.settings = { workerRecovery: true, overridden: false, expiresAt: null };
        return send(200, { removed });
      }
      if (role === 'agent' && url === '/__chaos/settings') {
        fake.settings =
          req.method === 'PUT'
            ? {
                workerRecovery: body.workerRecovery as boolean,
                overridden: true,
                expiresAt: Date.now() + 1_000,
              }
            : { workerRecovery: true, overridden: false, expiresAt: null };
        return send(200, { settings: fake.settings });
      }
      if (role === 'proxy' && url === '/__chaos/stats') return send(200, { stats: fake.stats });
      return send(404, { error: { status: 404, reason: 'ROUTE_NOT_FOUND', message: url } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}
