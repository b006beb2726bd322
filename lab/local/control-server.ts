/**
 * The supervisor's control API, on loopback, for the CLI and for experiments:
 * - `GET /status` → the lab, every instance and every fault proxy (live pids, ready, restarts,
 *   last exit);
 * - `POST /instances/:id/kill` → SIGKILL one instance (the supervisor restarts it), or the
 *   process of every fault proxy, whichever proxy is named (all of them restart);
 * - `POST /shutdown` → stop every instance and the supervisor.
 * Every call needs `authorization: Bearer <admin token>`, the token in the lab's state file.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InstanceStatus, KillResult } from './supervisor.ts';

/**
 * A fault proxy; `url` is its admin API (where readiness is). The proxies share one process:
 * pid, state, restarts and last exit are that process's, the same on every proxy.
 */
export interface ProxyStatus extends InstanceStatus {
  /** The instance it stands in front of, `coin-1`. */
  readonly fronts: string;
  /** What the gateways call. */
  readonly dataUrl: string;
}

export interface LabStatus {
  readonly pid: number;
  readonly startedAt: string;
  readonly trust: string;
  readonly workerRecovery: boolean;
  readonly gateways: Readonly<Record<string, string>>;
  /** The services: backends and gateways. */
  readonly instances: readonly InstanceStatus[];
  /** One fault proxy per backend instance. */
  readonly proxies: readonly ProxyStatus[];
  /** The lab's live page; null when it was not asked for (`up --no-live`, a run's own lab) or not served. */
  readonly liveUrl?: string | null;
}

export interface ControlTarget {
  status(): LabStatus;
  kill(id: string): KillResult;
  ids(): string[];
  /** Starts stopping the lab; the answer is sent before it completes. */
  shutdown(): void;
}

export interface ControlServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  // Comparing digests keeps the comparison constant-time whatever the length given.
  return given.length > 0 && timingSafeEqual(digest(given), digest(token));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function fail(res: ServerResponse, status: number, reason: string, message: string): void {
  send(res, status, { error: { status, reason, message, metadata: {} } });
}

export function startControlServer(options: {
  port: number;
  host: string;
  token: string;
  target: ControlTarget;
}): Promise<ControlServer> {
  const { target, token } = options;
  const server = createServer((req, res) => {
    // Bodies are never read; drain whatever a client sends so the socket stays usable.
    req.resume();
    if (!authorized(req, token)) {
      return fail(res, 401, 'UNAUTHORIZED', 'missing or wrong bearer token (it is in the lab state file)');
    }
    const url = new URL(req.url ?? '/', 'http://control');
    const kill = /^\/instances\/([^/]+)\/kill$/.exec(url.pathname);
    if (req.method === 'GET' && url.pathname === '/status') return send(res, 200, target.status());
    if (req.method === 'POST' && kill) {
      const id = decodeURIComponent(kill[1] ?? '');
      const result = target.kill(id);
      if (result === 'unknown') {
        return fail(
          res,
          404,
          'INSTANCE_NOT_FOUND',
          `no instance ${id}; instances: ${target.ids().join(', ')}`,
        );
      }
      if (result === 'not-running') {
        return fail(
          res,
          409,
          'INSTANCE_NOT_RUNNING',
          `${id} is not running right now (backing off or stopping)`,
        );
      }
      return send(res, 202, { killed: id });
    }
    if (req.method === 'POST' && url.pathname === '/shutdown') {
      send(res, 202, { stopping: true });
      target.shutdown();
      return;
    }
    return fail(res, 404, 'ROUTE_NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${options.host}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
