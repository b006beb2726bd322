import { z } from 'zod';
import { ConfigError, optionalEnv, requireEnv } from '../lib/env.ts';
import { FAULT_PROXY_ENV, SERVICE_ENV } from '../names.ts';
import { type FaultProxyConfig, parseHostPort } from './config.ts';
import { type FaultProxyDeps, type RunningFaultProxy, startFaultProxy } from './proxy.ts';

/**
 * Several fault proxies in one process, as Toxiproxy hosts all of its proxies: the local lab
 * runs its ten in one Node process instead of ten. Each is `startFaultProxy` as it is alone —
 * its own listener, admin port, leases, statistics, metrics and log identity — so nothing a
 * client sees changes; only the process (and so its crashes and restarts) is shared. The
 * Kubernetes sidecar runs one proxy per pod (`main.ts`).
 */

type Env = Readonly<Record<string, string | undefined>>;

const VARIABLE = FAULT_PROXY_ENV.proxies;

const EXAMPLE = '[{"id":"coin-1-proxy","listenPort":18240,"adminPort":18340,"upstream":"127.0.0.1:18140"}]';

const PORT_HINT = 'expected an integer from 0 to 65535 (0 picks a free one)';

const port = z.int({ error: PORT_HINT }).min(0, { error: PORT_HINT }).max(65_535, { error: PORT_HINT });

/** One proxy as the host's configuration spells it; the admin token and log level are the host's. */
const hostedProxySchema = z.strictObject({
  /** Names the proxy in logs, metrics and its admin API, e.g. `coin-1-proxy`. */
  id: z.string({ error: 'expected a name, e.g. "coin-1-proxy"' }).min(1, { error: 'expected a name' }),
  /** Both ports bind here. @default 127.0.0.1 */
  listenHost: z
    .string({ error: 'expected an address, e.g. "127.0.0.1"' })
    .min(1, { error: 'expected an address' })
    .optional(),
  listenPort: port,
  adminPort: port,
  /** `host:port` of the instance it fronts. */
  upstream: z.string({ error: 'expected host:port, e.g. "127.0.0.1:18140"' }).transform((raw, ctx) => {
    try {
      return parseHostPort(raw);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'expected host:port with a port from 1 to 65535, e.g. "127.0.0.1:18140"',
      });
      return z.NEVER;
    }
  }),
});

/** One entry of FAULT_PROXIES, as the local lab writes it. */
export type HostedProxyEntry = z.input<typeof hostedProxySchema>;

const FIELDS = Object.keys(hostedProxySchema.shape);

function entryName(index: number, entry: unknown): string {
  const id = (entry as { id?: unknown } | null)?.id;
  return `${VARIABLE}[${index}]${typeof id === 'string' && id !== '' ? ` (${id})` : ''}`;
}

function describeIssue(issue: z.core.$ZodIssue, entries: readonly unknown[]): string {
  const [index, field] = issue.path;
  if (typeof index !== 'number') return `${VARIABLE} ${issue.message}`;
  const entry = entries[index];
  const where = entryName(index, entry);
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}: expected ${FIELDS.join(', ')}`;
  }
  if (field === undefined) return `${where}: expected an object with ${FIELDS.join(', ')}`;
  const raw = (entry as Record<string, unknown>)[String(field)];
  const what =
    raw === undefined ? `${String(field)} is missing` : `${String(field)}=${JSON.stringify(raw)} is invalid`;
  return `${where}: ${what}: ${issue.message}`;
}

/** No two proxies on one name or one port: the second could not listen, or could not be told apart. */
function checkDistinct(configs: readonly FaultProxyConfig[]): void {
  const names = new Map<string, number>();
  const ports = new Map<number, string>();
  configs.forEach((config, index) => {
    const where = entryName(index, { id: config.instanceId });
    const earlier = names.get(config.instanceId);
    if (earlier !== undefined) {
      throw new ConfigError(
        `${where}: the id is taken by ${VARIABLE}[${earlier}]: every proxy needs a name of its own`,
      );
    }
    names.set(config.instanceId, index);
    for (const [field, value] of [
      ['listenPort', config.listenPort],
      ['adminPort', config.adminPort],
    ] as const) {
      if (value === 0) continue;
      const owner = ports.get(value);
      if (owner !== undefined) {
        throw new ConfigError(
          `${where}: ${field} ${value} is taken by ${owner}: every proxy needs ports of its own`,
        );
      }
      ports.set(value, `${where}'s ${field}`);
    }
  });
}

/**
 * The proxies the host runs, from `FAULT_PROXIES` (a JSON array of `{id, listenHost?, listenPort,
 * adminPort, upstream}`), each with the host's CHAOS_ADMIN_TOKEN. A bad value is a ConfigError
 * naming the variable and the entry.
 */
export function faultProxiesFromEnv(env: Env): FaultProxyConfig[] {
  const raw = requireEnv(env, VARIABLE, `set it to a JSON array of proxies, e.g. ${EXAMPLE}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(
      `${VARIABLE} is not valid JSON (${(err as Error).message}): expected an array of proxies, e.g. ${EXAMPLE}`,
    );
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new ConfigError(
      `${VARIABLE}=${JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)} is invalid: expected a non-empty JSON array of proxies, e.g. ${EXAMPLE}`,
    );
  }
  const result = z.array(hostedProxySchema).safeParse(parsed);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new ConfigError(first ? describeIssue(first, parsed) : `${VARIABLE} is invalid`);
  }
  const adminToken = optionalEnv(env, SERVICE_ENV.adminToken);
  const configs = result.data.map(
    (entry): FaultProxyConfig => ({
      instanceId: entry.id,
      listenHost: entry.listenHost ?? '127.0.0.1',
      listenPort: entry.listenPort,
      upstream: entry.upstream,
      adminPort: entry.adminPort,
      ...(adminToken ? { adminToken } : {}),
    }),
  );
  checkDistinct(configs);
  return configs;
}

export interface RunningFaultProxyHost {
  /** In the order of the configuration. */
  readonly proxies: readonly RunningFaultProxy[];
  /** Stops every proxy. */
  close(): Promise<void>;
}

/**
 * Starts every proxy. All or none: if one cannot listen, the others are stopped again and the
 * error names it, so that the process exits and its supervisor starts it again.
 */
export async function startFaultProxyHost(
  configs: readonly FaultProxyConfig[],
  deps: FaultProxyDeps = {},
): Promise<RunningFaultProxyHost> {
  // The process's own metrics (CPU, memory, event loop) are the host's: the first proxy serves
  // them; ten copies would each sample the one event loop.
  const started = await Promise.allSettled(
    configs.map((config, i) => startFaultProxy(config, { ...deps, processMetrics: i === 0 })),
  );
  const proxies = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.findIndex((s) => s.status === 'rejected');
  if (failed >= 0) {
    await Promise.all(proxies.map((p) => p.close()));
    const reason = (started[failed] as PromiseRejectedResult).reason as Error;
    throw new Error(`fault proxy ${configs[failed]?.instanceId} could not start: ${reason.message}`, {
      cause: reason,
    });
  }
  return {
    proxies,
    async close() {
      await Promise.all(proxies.map((p) => p.close()));
    },
  };
}
