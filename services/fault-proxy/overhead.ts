import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Pool } from 'undici';
import { startBackend } from '../backends/server.ts';
import { startFaultProxy } from './proxy.ts';

/**
 * The proxy's own cost, with no fault in force: the same requests to one backend instance,
 * directly and through the proxy, one at a time and interleaved (so both see the same
 * machine), over one keep-alive connection each, as the gateway's pools use them.
 */

export interface LatencyFigures {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

export interface ProxyOverhead {
  readonly requests: number;
  readonly direct: LatencyFigures;
  readonly proxied: LatencyFigures;
  /** Proxied minus direct, percentile by percentile. */
  readonly addedMs: { readonly p50: number; readonly p99: number };
}

export interface OverheadOptions {
  /** Requests each way. */
  readonly requests: number;
  /** Requests each way before measuring (connections, JIT). @default min(50, requests) */
  readonly warmup?: number;
}

function figures(samples: number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const mean = sorted.reduce((sum, v) => sum + v, 0) / Math.max(1, sorted.length);
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), meanMs: round(mean) };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

async function timed(pool: Pool, path: string): Promise<number> {
  const started = performance.now();
  const res = await pool.request({ method: 'GET', path });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`GET ${path} answered ${res.statusCode}`);
  return performance.now() - started;
}

export async function measureProxyOverhead(options: OverheadOptions): Promise<ProxyOverhead> {
  const requests = Math.max(1, Math.floor(options.requests));
  const warmup = options.warmup ?? Math.min(50, requests);
  const log = pino({ level: 'silent' });
  const backend = await startBackend(
    {
      name: 'like',
      instanceId: 'like-bench',
      port: 0,
      host: '127.0.0.1',
      trustMode: 'zero',
      workerRecovery: true,
    },
    { log },
  );
  const proxy = await startFaultProxy(
    {
      instanceId: 'like-bench-proxy',
      listenHost: '127.0.0.1',
      listenPort: 0,
      upstream: { host: '127.0.0.1', port: backend.port },
      adminPort: 0,
    },
    { log },
  );
  const direct = new Pool(backend.url, { connections: 1 });
  const proxied = new Pool(`http://127.0.0.1:${proxy.dataPort}`, { connections: 1 });
  try {
    const samples = { direct: [] as number[], proxied: [] as number[] };
    for (let i = 0; i < warmup + requests; i++) {
      const path = `/likes/${(i % 1000) + 1}`;
      // Alternate which goes first, so neither always follows the other.
      const order = i % 2 === 0 ? (['direct', 'proxied'] as const) : (['proxied', 'direct'] as const);
      for (const which of order) {
        const ms = await timed(which === 'direct' ? direct : proxied, path);
        if (i >= warmup) samples[which].push(ms);
      }
    }
    const d = figures(samples.direct);
    const p = figures(samples.proxied);
    return {
      requests,
      direct: d,
      proxied: p,
      addedMs: { p50: round(p.p50Ms - d.p50Ms), p99: round(p.p99Ms - d.p99Ms) },
    };
  } finally {
    await Promise.all([direct.close(), proxied.close()]);
    await proxy.close();
    await backend.close();
  }
}

// Run directly (`node --import tsx services/fault-proxy/overhead.ts [requests]`), it prints the figures.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const requests = Number(process.argv[2] ?? 1000);
  process.stdout.write(`${JSON.stringify(await measureProxyOverhead({ requests }), null, 2)}\n`);
}
