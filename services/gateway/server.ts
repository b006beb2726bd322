import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ConfigError, envChoice, envInt, optionalEnv, requireEnv } from '../lib/env.ts';
import { createFaultAgent } from '../lib/fault-agent.ts';
import { createServiceApp, listen, type ServiceContext, timeRequest } from '../lib/service-app.ts';
import { type TlsMaterial, tlsFromEnv } from '../lib/tls.ts';
import { isTrustMode, signRequest, signsCalls, TRUST_MODES, type TrustMode, usesTls } from '../lib/trust.ts';
import { SERVICE_ENV, upstreamEnvName } from '../names.ts';
import { BACKENDS, type BackendName, isStrategy, STRATEGIES, type Strategy, topology } from '../topology.ts';
import { mountGatewayRoutes } from './app.ts';
import { PlainCaller, type Signer, type Upstreams } from './dependency-caller.ts';
import { LoopDelayDetector } from './loop-delay-detector.ts';
import { type LoopSampleSource, loopDelayProbe, SamplingWhileBusy } from './loop-delay-probe.ts';
import { createGatewayMetrics } from './metrics.ts';
import { ResilientCaller } from './resilient-caller.ts';
import { UpstreamSet } from './upstream.ts';

/** The gateway (BFF) process: one strategy, its upstreams, its budget and its trust mode. */
export interface GatewayConfig {
  readonly strategy: Strategy;
  readonly instanceId: string;
  readonly port: number;
  readonly host: string;
  /** Base URLs of every instance of each backend. */
  readonly upstreams: Readonly<Record<BackendName, readonly string[]>>;
  /** Page budget when the caller sends no `x-request-timeout`. */
  readonly budgetMs: number;
  /** Resilient only: pages in flight before shedding with 503 OVERLOADED. */
  readonly maxConcurrency: number;
  /**
   * Connections the gateway's port accepts per turn of its event loop (`acceptors.ts`): Node's
   * own 1 for the naive and parallel gateways, `ACCEPTORS_RESILIENT` for the resilient one.
   */
  readonly acceptors: number;
  /**
   * Resilient only: how late the event loop may run, sample after sample, before new pages are
   * shed with 503 OVERLOADED (the process itself is the bottleneck); 0 turns it off.
   */
  readonly loopDelayTargetMs: number;
  /** Resilient only: how long the loop must stay that late before pages are shed. */
  readonly loopDelayIntervalMs: number;
  /** Resilient only: pages in flight below which a late loop sheds nothing. */
  readonly loopDelayMinInFlight: number;
  /** Resilient only: after a page shed for a late loop, pages are still shed this long while as many are in flight. */
  readonly loopDelayHoldMs: number;
  /** How often each ready instance's `/readyz` is probed (one not ready: every 250 ms at most). */
  readonly probeIntervalMs: number;
  /** Bearer token of the `/__chaos` admin API; unset turns it off. */
  readonly adminToken?: string;
  readonly trustMode: TrustMode;
  /** HMAC key: required for half trust (and to be switched to it). */
  readonly trustKey?: string;
  /** The lab's CA and the gateways' client certificate: required for full trust (and to be switched to it). */
  readonly tls?: TlsMaterial;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * A ready upstream instance is probed every 5 s (Kubernetes' readiness probes default to 10 s): a
 * crash is seen at once by passive ejection, and at 250 ms three gateways asked each of ten
 * instances 12 times a second, the bulk of an idle lab's CPU.
 */
export const UPSTREAM_PROBE_DEFAULT_MS = 5_000;

/**
 * A loop 20 ms late for 100 ms is a standing queue: an idle gateway runs its timers within a
 * millisecond or two, a GC pause or a burst of TLS handshakes makes one turn late, not a train of
 * them, and a queue of 20 ms is small against the page budget (800 ms). With fewer than 2 pages in
 * flight nothing is shed: a gateway with one page or none is not what keeps its loop late. Once it
 * refused, it keeps refusing while 2 or more are in flight for a second after its last refusal.
 *
 * Measured at five times the resilient gateway's capacity (`lab/bench/overload.ts`, the lab on one
 * CPU): a floor of 2 kept every admitted page good (p50 15 ms); 4 and 8 admitted pages that had
 * already queued in front of the process for seconds (79–80% good), and 16, with no hold, 40%.
 */
export const LOOP_DELAY_DEFAULTS = { targetMs: 20, intervalMs: 100, minInFlight: 2, holdMs: 1_000 } as const;

/**
 * The resilient gateway's port accepts up to 8 connections per turn of its loop, not Node's one:
 * a gateway that sheds must first see the request. At the onset of an overload at five times its
 * capacity (`lab/bench/overload.ts`, the lab on one CPU, the client opening ~800 connections in
 * the first second), the worst admitted page took 1.3–1.8 s with one acceptor, 0.37–0.55 s with 8.
 */
export const ACCEPTORS_RESILIENT = 8;

export function gatewayConfigFromEnv(env: Env): GatewayConfig {
  const strategy = requireEnv(env, SERVICE_ENV.strategy, `expected one of ${STRATEGIES.join(', ')}`);
  if (!isStrategy(strategy)) {
    throw new ConfigError(
      `${SERVICE_ENV.strategy}=${JSON.stringify(strategy)} is invalid: expected one of ${STRATEGIES.join(', ')}`,
    );
  }
  const trustMode = envChoice(env, SERVICE_ENV.trustMode, TRUST_MODES, 'zero');
  const trustKey = optionalEnv(env, SERVICE_ENV.trustKey);
  const tls = tlsFromEnv(env);
  checkTrust(trustMode, trustKey, tls);
  const adminToken = optionalEnv(env, SERVICE_ENV.adminToken);
  return {
    strategy,
    instanceId: optionalEnv(env, SERVICE_ENV.instanceId) ?? hostname(),
    port: envInt(env, SERVICE_ENV.port, topology.gateway.port, { min: 0, max: 65_535 }),
    host: optionalEnv(env, SERVICE_ENV.host) ?? '0.0.0.0',
    upstreams: Object.fromEntries(BACKENDS.map((d) => [d, upstreamUrls(env, d)])) as Record<
      BackendName,
      string[]
    >,
    budgetMs: envInt(env, SERVICE_ENV.gatewayBudgetMs, topology.gateway.defaultBudgetMs, {
      min: 1,
      max: 600_000,
    }),
    maxConcurrency: envInt(env, SERVICE_ENV.gatewayMaxConcurrency, 128, { min: 1, max: 100_000 }),
    acceptors: envInt(env, SERVICE_ENV.gatewayAcceptors, strategy === 'resilient' ? ACCEPTORS_RESILIENT : 1, {
      min: 1,
      max: 64,
    }),
    loopDelayTargetMs: envInt(env, SERVICE_ENV.gatewayLoopDelayTargetMs, LOOP_DELAY_DEFAULTS.targetMs, {
      min: 0,
      max: 60_000,
    }),
    loopDelayIntervalMs: envInt(env, SERVICE_ENV.gatewayLoopDelayIntervalMs, LOOP_DELAY_DEFAULTS.intervalMs, {
      min: 1,
      max: 60_000,
    }),
    loopDelayMinInFlight: envInt(
      env,
      SERVICE_ENV.gatewayLoopDelayMinInFlight,
      LOOP_DELAY_DEFAULTS.minInFlight,
      { min: 0, max: 100_000 },
    ),
    loopDelayHoldMs: envInt(env, SERVICE_ENV.gatewayLoopDelayHoldMs, LOOP_DELAY_DEFAULTS.holdMs, {
      min: 0,
      max: 60_000,
    }),
    probeIntervalMs: envInt(env, SERVICE_ENV.upstreamProbeMs, UPSTREAM_PROBE_DEFAULT_MS, {
      min: 10,
      max: 60_000,
    }),
    ...(adminToken ? { adminToken } : {}),
    trustMode,
    ...(trustKey ? { trustKey } : {}),
    ...(tls ? { tls } : {}),
  };
}

function upstreamUrls(env: Env, dependency: BackendName): string[] {
  const name = upstreamEnvName(dependency);
  const example = `http://127.0.0.1:${topology.backends[dependency].port}`;
  const raw = requireEnv(
    env,
    name,
    `expected comma-separated base URLs of the ${dependency} instances, e.g. ${example}`,
  );
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((text) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new ConfigError(
          `${name}: ${JSON.stringify(text)} is not a URL: expected a base URL like ${example}`,
        );
      }
      if (url.protocol !== 'http:' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
        throw new ConfigError(
          `${name}: ${JSON.stringify(text)} is invalid: expected an http base URL without a path, like ${example}`,
        );
      }
      return url.origin;
    });
}

/** Why the gateway cannot call in `mode` with what it was given, or undefined when it can. */
function cannotTrust(
  mode: TrustMode,
  key: string | undefined,
  tls: TlsMaterial | undefined,
): string | undefined {
  const { trustMode, trustKey, tlsCa, tlsCert, tlsKey } = SERVICE_ENV;
  if (signsCalls(mode) && !key) {
    return `${trustKey} is not set: ${trustMode}=${mode} signs every call with it (any shared secret)`;
  }
  if (usesTls(mode) && !tls) {
    return `${tlsCa}, ${tlsCert} and ${tlsKey} are not set: ${trustMode}=${mode} calls every backend over mutual TLS with the lab's certificates`;
  }
  return undefined;
}

function checkTrust(mode: string, key: string | undefined, tls: TlsMaterial | undefined): void {
  if (!isTrustMode(mode))
    throw new ConfigError(`${SERVICE_ENV.trustMode}=${JSON.stringify(mode)} is invalid`);
  const why = cannotTrust(mode, key, tls);
  if (why) throw new ConfigError(why);
}

export interface GatewayDeps {
  readonly log?: Logger;
  /** @default Date.now */
  readonly clock?: () => number;
  /** @default Math.random */
  readonly random?: () => number;
  /** What the resilient gateway learns how late its event loop runs from. @default loopDelayProbe() */
  readonly loopSamples?: LoopSampleSource;
}

export interface RunningGateway {
  readonly url: string;
  readonly port: number;
  readonly ctx: ServiceContext;
  close(): Promise<void>;
}

/**
 * Starts a gateway: probes every upstream once (so the first page is routed well), then
 * listens and reports ready. `port: 0` picks a free port (in-process tests).
 */
export async function startGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<RunningGateway> {
  checkTrust(config.trustMode, config.trustKey, config.tls);
  for (const dependency of BACKENDS) {
    if (!config.upstreams[dependency]?.length) {
      throw new ConfigError(`${upstreamEnvName(dependency)}: no instances of ${dependency} to call`);
    }
  }
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const { app, ctx, finalize } = createServiceApp({
    service: 'gateway',
    instanceId: config.instanceId,
    ...(deps.log ? { log: deps.log } : {}),
  });
  const metrics = createGatewayMetrics(ctx.metrics);
  const agent = createFaultAgent({
    ctx,
    ...(config.adminToken ? { token: config.adminToken } : {}),
    workerRecoveryDefault: true,
    trustDefault: config.trustMode,
    cannotTrust: (mode) => cannotTrust(mode, config.trustKey, config.tls),
    clock,
    random,
  });
  app.use('/__chaos', agent.router);
  app.use(agent.middleware);

  const upstreams: Upstreams = Object.fromEntries(
    BACKENDS.map((dependency) => [
      dependency,
      new UpstreamSet({
        dependency,
        urls: config.upstreams[dependency],
        probeIntervalMs: config.probeIntervalMs,
        metrics,
        log: ctx.log,
        ...(config.tls ? { tls: config.tls, secure: () => usesTls(agent.trustMode()) } : {}),
      }),
    ]),
  ) as Record<BackendName, UpstreamSet>;
  const trustKey = config.trustKey;
  // The trust mode is read on every call: a variant may override the lab's for a while.
  const sign: Signer | undefined = trustKey
    ? (request) =>
        signsCalls(agent.trustMode()) ? signRequest(trustKey, config.instanceId, request, clock()) : {}
    : undefined;
  const shared = { upstreams, metrics, ...(sign ? { sign } : {}) };
  const resilient =
    config.strategy === 'resilient' ? new ResilientCaller({ ...shared, clock, random }) : undefined;
  const loopDelay =
    resilient && config.loopDelayTargetMs > 0
      ? new LoopDelayDetector({ targetMs: config.loopDelayTargetMs, intervalMs: config.loopDelayIntervalMs })
      : undefined;

  // The loop is watched while pages come (from the first page after a second without any).
  const loopWatch = loopDelay
    ? new SamplingWhileBusy(
        deps.loopSamples ?? loopDelayProbe(),
        (sample) => loopDelay.observe(sample),
        (sample) => !loopDelay.shedding() && sample.delayMs < loopDelay.targetMs,
      )
    : undefined;

  const { front } = mountGatewayRoutes(app, {
    strategy: config.strategy,
    caller: resilient ?? new PlainCaller(shared),
    upstreams,
    metrics,
    budgetMs: config.budgetMs,
    maxConcurrency: config.maxConcurrency,
    ...(loopDelay && loopWatch
      ? {
          loopDelay,
          loopDelayMinInFlight: config.loopDelayMinInFlight,
          loopDelayHoldMs: config.loopDelayHoldMs,
          onPage: () => loopWatch.wake(),
        }
      : {}),
    clock,
    log: ctx.log,
    timeRefusal: (route, status, seconds) => timeRequest(ctx, { method: 'GET', route, status }, seconds),
    ...(resilient
      ? {
          describe: () => ({
            breakers: resilient.breakers(),
            ...(loopDelay ? { loopDelay: loopDelay.snapshot() } : {}),
          }),
        }
      : {}),
  });
  finalize();

  const closeUpstreams = () => Promise.all(BACKENDS.map((d) => upstreams[d].close()));
  let listening: Awaited<ReturnType<typeof listen>>;
  try {
    await Promise.all(BACKENDS.map((d) => upstreams[d].start()));
    listening = await listen(app, config.port, config.host, undefined, {
      ...(front ? { front } : {}),
      acceptors: config.acceptors,
      onAcceptorsFailed: (err) =>
        ctx.log.warn({ err }, `${err.message}; the port accepts one connection per turn`),
    });
  } catch (err) {
    agent.close();
    await closeUpstreams();
    throw err;
  }
  ctx.readiness.set(true);
  ctx.log.info(
    {
      url: listening.url,
      strategy: config.strategy,
      trust: config.trustMode,
      tls: config.tls !== undefined,
      acceptors: listening.acceptors,
    },
    'gateway listening',
  );

  return {
    url: listening.url,
    port: listening.port,
    ctx,
    close: async () => {
      ctx.readiness.set(false);
      loopWatch?.close();
      agent.close();
      await listening.close();
      await closeUpstreams();
    },
  };
}
