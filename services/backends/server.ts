import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ConfigError, envBool, envChoice, envInt, optionalEnv, requireEnv } from '../lib/env.ts';
import { createFaultAgent, type FaultAgent } from '../lib/fault-agent.ts';
import { createLauncher, type Launcher } from '../lib/go.ts';
import { createServiceApp, listen, type ServiceContext } from '../lib/service-app.ts';
import { type TlsMaterial, tlsFromEnv } from '../lib/tls.ts';
import { TRUST_MODES, type TrustMode } from '../lib/trust.ts';
import { checkCanServe, trustMiddleware } from '../lib/trust-middleware.ts';
import { SERVICE_ENV } from '../names.ts';
import { type BackendName, topology } from '../topology.ts';
import { accountRoutes } from './account.ts';
import { archiveRoutes } from './archive.ts';
import { coinRoutes } from './coin.ts';
import { dataset } from './dataset.ts';
import { likeRoutes } from './like.ts';
import type { RouteFactory } from './routes.ts';
import { vipRoutes } from './vip.ts';

/** One backend instance: configuration from the environment, and the process's HTTP server. */

export interface BackendConfig {
  readonly name: BackendName;
  readonly instanceId: string;
  /** 0 picks a free port (in-process tests). */
  readonly port: number;
  readonly host: string;
  /** Bearer token of the fault admin API; unset turns the API off. */
  readonly adminToken?: string;
  readonly trustMode: TrustMode;
  /** HMAC key shared with the gateway; required for half trust (and to be switched to it). */
  readonly trustKey?: string;
  /** The lab's CA and this service's certificate; required for full trust (and to be switched to it). */
  readonly tls?: TlsMaterial;
  /** Default for panic recovery in background tasks (the fault agent may override it). */
  readonly workerRecovery: boolean;
}

export interface BackendDeps {
  /** @default a pino logger to stdout at LOG_LEVEL */
  readonly log?: Logger;
  /** @default Date.now */
  readonly clock?: () => number;
  /** @default Math.random */
  readonly random?: () => number;
}

export interface RunningBackend {
  readonly url: string;
  readonly port: number;
  readonly ctx: ServiceContext;
  readonly agent: FaultAgent;
  readonly launcher: Launcher;
  close(): Promise<void>;
}

const ROUTES: Record<BackendName, RouteFactory> = {
  account: accountRoutes,
  archive: archiveRoutes,
  vip: vipRoutes,
  like: likeRoutes,
  coin: coinRoutes,
};

type Env = Readonly<Record<string, string | undefined>>;

export function backendConfigFromEnv(name: BackendName, env: Env): BackendConfig {
  const trustMode = envChoice(env, SERVICE_ENV.trustMode, TRUST_MODES, 'zero');
  const trustKey =
    trustMode !== 'zero'
      ? requireEnv(
          env,
          SERVICE_ENV.trustKey,
          `${SERVICE_ENV.trustMode}=${trustMode} needs the HMAC key the gateway signs calls with (the same value on every service)`,
        )
      : optionalEnv(env, SERVICE_ENV.trustKey);
  const tls = tlsFromEnv(env);
  if (trustMode === 'full' && !tls) {
    throw new ConfigError(
      `${SERVICE_ENV.trustMode}=full needs the lab's certificates: ${SERVICE_ENV.tlsCa}, ${SERVICE_ENV.tlsCert} and ${SERVICE_ENV.tlsKey}`,
    );
  }
  const adminToken = optionalEnv(env, SERVICE_ENV.adminToken);
  return {
    name,
    instanceId: optionalEnv(env, SERVICE_ENV.instanceId) ?? hostname(),
    port: envInt(env, SERVICE_ENV.port, topology.backends[name].port, { min: 0, max: 65_535 }),
    host: optionalEnv(env, SERVICE_ENV.host) ?? '0.0.0.0',
    ...(adminToken ? { adminToken } : {}),
    trustMode,
    ...(trustKey ? { trustKey } : {}),
    ...(tls ? { tls } : {}),
    workerRecovery: envBool(env, SERVICE_ENV.workerRecovery, true),
  };
}

/** A logger handed in (tests, an embedding process) still says which instance speaks, once. */
function identified(log: Logger, config: BackendConfig): Logger {
  return log.bindings().service === undefined
    ? log.child({ service: config.name, instance: config.instanceId })
    : log;
}

export async function startBackend(config: BackendConfig, deps: BackendDeps = {}): Promise<RunningBackend> {
  const canServe = { ...(config.trustKey ? { key: config.trustKey } : {}), tls: config.tls !== undefined };
  checkCanServe(config.trustMode, canServe);
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const { app, ctx, finalize } = createServiceApp({
    service: config.name,
    instanceId: config.instanceId,
    ...(deps.log ? { log: identified(deps.log, config) } : {}),
  });
  const agent = createFaultAgent({
    ctx,
    ...(config.adminToken ? { token: config.adminToken } : {}),
    workerRecoveryDefault: config.workerRecovery,
    trustDefault: config.trustMode,
    cannotTrust: (mode) => {
      try {
        checkCanServe(mode, canServe);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
    clock,
    random,
  });
  const launcher = createLauncher({ ctx, recovery: agent.workerRecovery, injectPanic: agent.shouldPanic });

  // Order matters: the fault agent's own API is reachable whatever the trust mode and faults;
  // a refused call is refused before any fault spends time on it.
  app.use('/__chaos', agent.router);
  app.use(
    trustMiddleware({
      ctx,
      mode: agent.trustMode,
      ...canServe,
      clock,
    }),
  );
  app.use(agent.middleware);
  app.use(ROUTES[config.name]({ ctx, go: launcher.go, clock, random }));
  finalize();

  dataset();
  let listening: Awaited<ReturnType<typeof listen>>;
  try {
    listening = await listen(app, config.port, config.host, config.tls);
  } catch (err) {
    agent.close();
    throw err;
  }
  ctx.readiness.set(true);
  ctx.log.info(
    {
      url: listening.url,
      trustMode: config.trustMode,
      tls: config.tls !== undefined,
      workerRecovery: config.workerRecovery,
    },
    `${config.name} backend listening`,
  );

  return {
    url: listening.url,
    port: listening.port,
    ctx,
    agent,
    launcher,
    async close() {
      ctx.readiness.set(false);
      agent.close();
      await listening.close();
    },
  };
}
