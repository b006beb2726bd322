import { hostname } from 'node:os';
import { ConfigError, envInt, optionalEnv, requireEnv } from '../lib/env.ts';

/** Where the proxy listens and what it fronts, from the environment (fails fast, naming the variable). */
export interface FaultProxyConfig {
  /** Names this proxy in logs and metrics, e.g. `coin-1-proxy`. @default the host name */
  readonly instanceId: string;
  /** Data port (raw TCP) and admin port bind here. @default 127.0.0.1 */
  readonly listenHost: string;
  /** Data port; 0 picks a free one (in-process tests). */
  readonly listenPort: number;
  /** The one backend instance behind the proxy. */
  readonly upstream: { readonly host: string; readonly port: number };
  /** Admin HTTP port; 0 picks a free one. */
  readonly adminPort: number;
  /** Bearer token of the admin API; unset turns the fault routes off (404). */
  readonly adminToken?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const PORT_RANGE = { min: 0, max: 65_535 } as const;

function requirePort(env: Env, name: string, hint: string): number {
  requireEnv(env, name, hint);
  return envInt(env, name, 0, PORT_RANGE);
}

/** `host:port`, `[v6]:port`; the port 1-65535. */
export function parseHostPort(raw: string, name = 'UPSTREAM'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw.trim());
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65_535) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected host:port with a port from 1 to 65535, e.g. 127.0.0.1:18081`,
    );
  }
  return { host: (match[1] ?? match[2])!, port };
}

export function faultProxyConfigFromEnv(env: Env): FaultProxyConfig {
  const upstream = parseHostPort(
    requireEnv(
      env,
      'UPSTREAM',
      'set it to host:port of the backend instance the proxy fronts, e.g. 127.0.0.1:18081',
    ),
  );
  const adminToken = optionalEnv(env, 'CHAOS_ADMIN_TOKEN');
  return {
    instanceId: optionalEnv(env, 'INSTANCE_ID') ?? hostname(),
    listenHost: optionalEnv(env, 'LISTEN_HOST') ?? '127.0.0.1',
    listenPort: requirePort(env, 'LISTEN_PORT', 'set it to the port clients connect to (0 picks a free one)'),
    upstream,
    adminPort: requirePort(
      env,
      'ADMIN_PORT',
      'set it to the port of the admin HTTP API (0 picks a free one)',
    ),
    ...(adminToken ? { adminToken } : {}),
  };
}
