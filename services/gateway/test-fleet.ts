import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';
import type { Registry } from 'prom-client';
import { type RunningBackend, startBackend } from '../backends/server.ts';
import type { TlsMaterial } from '../lib/tls.ts';
import type { TrustMode } from '../lib/trust.ts';
import { BACKENDS, type BackendName } from '../topology.ts';
import { type GatewayConfig, type GatewayDeps, type RunningGateway, startGateway } from './server.ts';

/**
 * Real backends and gateways on loopback for the gateway's HTTP tests: every instance is the
 * production server on an ephemeral port, faults go through each backend's real admin API.
 */
export const ADMIN_TOKEN = 'test-admin-token';

export interface Fleet {
  readonly urls: Record<BackendName, string[]>;
  readonly instances: Record<BackendName, RunningBackend[]>;
  /** Every JSON log line the backends wrote. */
  readonly logs: string[];
  /** Applies a fault to every instance of `service`, or only to the one at `only`. */
  fault(service: BackendName, kind: string, params: Record<string, number>, only?: number): Promise<void>;
  clearFaults(): Promise<void>;
  close(): Promise<void>;
}

function capturingLogger(lines: string[]): Logger {
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      if (lines.length > 20_000) lines.splice(0, 10_000); // bounded
      done();
    },
  });
  // Debug: a call that went well is logged only there, and tests follow calls by their lines.
  return pino({ level: 'debug' }, stream);
}

export const silentLog: Logger = pino({ level: 'silent' });

export async function startFleet(
  options: {
    replicas?: number;
    trustMode?: TrustMode;
    trustKey?: string;
    /** Each backend's TLS material (full trust), e.g. `(name) => tlsFor(pki, name)` from lab/pki.ts. */
    tls?: (name: BackendName) => TlsMaterial;
  } = {},
): Promise<Fleet> {
  const logs: string[] = [];
  const log = capturingLogger(logs);
  const urls = {} as Record<BackendName, string[]>;
  const instances = {} as Record<BackendName, RunningBackend[]>;
  for (const name of BACKENDS) {
    urls[name] = [];
    instances[name] = [];
    for (let i = 1; i <= (options.replicas ?? 2); i++) {
      const running = await startBackend(
        {
          name,
          instanceId: `${name}-${i}`,
          port: 0,
          host: '127.0.0.1',
          adminToken: ADMIN_TOKEN,
          trustMode: options.trustMode ?? 'zero',
          ...(options.trustKey ? { trustKey: options.trustKey } : {}),
          ...(options.tls ? { tls: options.tls(name) } : {}),
          workerRecovery: true,
        },
        { log: log.child({ service: name, instance: `${name}-${i}` }) },
      );
      urls[name].push(running.url);
      instances[name].push(running);
    }
  }
  const admin = async (url: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}/__chaos${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!response.ok)
      throw new Error(`${method} ${url}/__chaos${path}: ${response.status} ${await response.text()}`);
  };
  return {
    urls,
    instances,
    logs,
    fault: async (service, kind, params, only) => {
      const targets = only === undefined ? urls[service] : [urls[service][only] as string];
      await Promise.all(
        targets.map((url) => admin(url, 'PUT', `/faults/test-${kind}`, { kind, params, leaseMs: 30_000 })),
      );
    },
    clearFaults: async () => {
      await Promise.all(BACKENDS.flatMap((name) => urls[name].map((url) => admin(url, 'DELETE', '/faults'))));
    },
    close: async () => {
      await Promise.all(BACKENDS.flatMap((name) => instances[name].map((b) => b.close())));
    },
  };
}

export function gatewayConfig(
  upstreams: Record<BackendName, string[]>,
  overrides: Partial<GatewayConfig> = {},
): GatewayConfig {
  return {
    strategy: 'resilient',
    instanceId: `gateway-${overrides.strategy ?? 'resilient'}`,
    port: 0,
    host: '127.0.0.1',
    upstreams,
    budgetMs: 800,
    maxConcurrency: 128,
    // Node's one acceptor: no helper process per gateway (acceptors.test.ts and the lab test more).
    acceptors: 1,
    // Off: the fleet, the gateways and the test share one event loop, whose delay is not the
    // gateway's own. The tests that shed on it turn it on.
    loopDelayTargetMs: 0,
    loopDelayIntervalMs: 100,
    loopDelayMinInFlight: 0,
    loopDelayHoldMs: 0,
    probeIntervalMs: 100,
    trustMode: 'zero',
    ...overrides,
  };
}

export function startTestGateway(
  upstreams: Record<BackendName, string[]>,
  overrides: Partial<GatewayConfig> = {},
  deps: Omit<GatewayDeps, 'log'> = {},
): Promise<RunningGateway> {
  return startGateway(gatewayConfig(upstreams, overrides), { log: silentLog, ...deps });
}

export interface PageResponse {
  readonly status: number;
  readonly headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read the JSON freely
  readonly body: any;
  readonly ms: number;
}

export async function getPage(
  gatewayUrl: string,
  aid: number | string,
  headers: Record<string, string> = {},
): Promise<PageResponse> {
  const started = performance.now();
  const response = await fetch(`${gatewayUrl}/api/video/${aid}`, { headers });
  const body = await response.json();
  return { status: response.status, headers: response.headers, body, ms: performance.now() - started };
}

/** Sum of a metric's samples whose labels include `labels` (`name_count` reads a histogram's count). */
export async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const histogram = name.endsWith('_count') ? name.slice(0, -'_count'.length) : undefined;
  const found = registry.getSingleMetric(histogram ?? name) ?? registry.getSingleMetric(name);
  if (!found) throw new Error(`no metric ${name}`);
  const values: { value: number; labels: Record<string, unknown>; metricName?: string }[] = (
    await found.get()
  ).values;
  return values
    .filter((v) => !histogram || v.metricName === name)
    .filter((v) => Object.entries(labels).every(([k, value]) => String(v.labels[k]) === value))
    .reduce((sum, v) => sum + v.value, 0);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
