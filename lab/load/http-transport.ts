/**
 * The generator's HTTP client: one undici Pool per target, keep-alive, with as many connections as the
 * target may have requests in flight — HTTP/1.1 answers one request per connection at a time, and an
 * open-model generator must never wait for a free connection (that wait is coordinated omission again).
 */
import { Pool } from 'undici';

export interface LoadTarget {
  /** Names the target in stats, e.g. the gateway strategy. */
  readonly name: string;
  /** Base URL; request paths are appended to it. */
  readonly url: string;
}

export interface SendRequest {
  readonly target: LoadTarget;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Aborted on timeout or cancellation; the send must settle promptly when it is. */
  readonly signal: AbortSignal;
}

export interface SendResult {
  readonly status: number;
  /** The `x-degraded` header, if any. */
  readonly degraded: string | string[] | undefined;
}

/** How requests reach targets; the HTTP one below, or a fake in tests. */
export interface Transport {
  send(request: SendRequest): Promise<SendResult>;
  /** Waits for requests under way, then releases connections. */
  close(): Promise<void>;
  /** Releases connections now, failing requests under way. */
  destroy(): Promise<void>;
}

// Gateway pages are about a kilobyte; a body this large is drained no further (the connection is dropped).
const BODY_LIMIT_BYTES = 1 << 20;

export function createHttpTransport(
  targets: readonly LoadTarget[],
  options: { readonly connections: number },
): Transport {
  const pools = new Map<string, { pool: Pool; basePath: string }>();
  for (const target of targets) {
    const url = new URL(target.url);
    const pool = new Pool(url.origin, { connections: options.connections, pipelining: 1 });
    pools.set(target.name, { pool, basePath: url.pathname.replace(/\/$/, '') });
  }
  const all = () => [...pools.values()].map(({ pool }) => pool);
  return {
    async send({ target, path, headers, signal }) {
      const entry = pools.get(target.name);
      if (!entry) throw new Error(`no pool for target ${target.name}`);
      const response = await entry.pool.request({
        method: 'GET',
        path: entry.basePath + path,
        headers,
        signal,
      });
      // The latency is to the end of the page, as a browser would wait for it.
      await response.body.dump({ limit: BODY_LIMIT_BYTES, signal });
      return { status: response.statusCode, degraded: response.headers['x-degraded'] };
    },
    async close() {
      // A pool destroyed already (a drain that gave up) has nothing left to close; closing it would
      // throw ClientDestroyedError and lose the summary.
      await Promise.all(
        all()
          .filter((pool) => !pool.destroyed && !pool.closed)
          .map((pool) => pool.close()),
      );
    },
    async destroy() {
      await Promise.all(
        all()
          .filter((pool) => !pool.destroyed)
          .map((pool) => pool.destroy()),
      );
    },
  };
}
