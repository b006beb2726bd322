import type { RequestHandler, Router } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { type BodyShape, faultParameter, parseBody, show } from './admin-api.ts';
import { LabError } from './errors.ts';
import { DELAY_PARAMS, type FaultParams, leaseRouter, type ParamsSchema } from './lease-router.ts';
import { createLeaseBook, type Lease } from './leases.ts';
import { isInfraPath, requestIdOf, type ServiceContext } from './service-app.ts';
import { TRUST_MODES, type TrustMode } from './trust.ts';

/**
 * The in-process half of fault injection, the same on every target: an admin API under
 * `/__chaos` that applies faults as leases, and the hooks that make them bite (a request
 * middleware for HTTP faults, a dice roll for background tasks).
 *
 * Every fault is a lease that ends by itself unless renewed, so a crashed or interrupted
 * experiment runner can never leave a service broken (the complaint most often made about
 * Chaos Mesh, Litmus and xk6-disruptor); the bookkeeping (`leases.ts`) and the lease routes
 * (`lease-router.ts`) are shared with the fault proxy.
 */

// Faults are plain declarative values, checked whole before anything is applied.

const percent = faultParameter('percent');

/** The kinds of fault the agent injects, each with the parameters it takes. */
const FAULT_PARAMS = {
  'http-delay': DELAY_PARAMS,
  'http-error': z.strictObject({ status: faultParameter('status'), percent }),
  'worker-panic': z.strictObject({ percent }),
} as const satisfies Record<string, ParamsSchema>;

/**
 * The most faults an agent holds in force at once; one more is refused with 409 TOO_MANY_FAULTS,
 * while a renewal of one in force is always taken. Every request checks every fault, and the
 * delays of several http-delays add up: thousands of leases (a client looping on new ids) would
 * make every request pay for all of them. A phase of the catalog puts at most 3 on an instance.
 */
export const MAX_AGENT_FAULTS = 16;

export type FaultKind = keyof typeof FAULT_PARAMS;
export const FAULT_KINDS = Object.keys(FAULT_PARAMS) as readonly FaultKind[];

export type FaultLease = Lease<FaultKind, FaultParams>;

export interface FaultAgentOptions {
  readonly ctx: ServiceContext;
  /** Bearer token for the admin API. @default unset: the admin API answers 404 */
  readonly token?: string;
  /** Whether background tasks recover from panics when no override is in force. */
  readonly workerRecoveryDefault: boolean;
  /**
   * The trust mode when no override is in force; with it, `trust` can be overridden too (a
   * variant that compares trust modes). @default unset: this process has no trust setting
   */
  readonly trustDefault?: TrustMode;
  /** Why this process cannot take a trust mode (no key, no certificates), or undefined when it can. */
  readonly cannotTrust?: (mode: TrustMode) => string | undefined;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Resolves after `ms`, or as soon as `signal` aborts. @default a timer */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface WorkerSettings {
  readonly workerRecovery: boolean;
  /** The trust mode in force, for a process that has one. */
  readonly trust?: TrustMode;
  readonly overridden: boolean;
  /** What the override in force sets (absent without one). */
  readonly override?: SettingsOverride;
  readonly expiresAt: number | null;
}

export interface FaultAgent {
  /** Mount with `app.use('/__chaos', agent.router)`. */
  readonly router: Router;
  /** Mount before the service's routes: applies http-delay and http-error, skips infra paths. */
  readonly middleware: RequestHandler;
  /** One dice roll for one background task (worker-panic). */
  shouldPanic(): boolean;
  /** The effective setting now: the override while its lease runs, else the default. */
  workerRecovery(): boolean;
  /** The trust mode now: the override while its lease runs, else the default (`zero` without one). */
  trustMode(): TrustMode;
  /** Active, unexpired faults, oldest first. */
  faults(): readonly FaultLease[];
  close(): void;
}

const settingsBody = z
  .strictObject({
    workerRecovery: z
      .boolean({ error: (issue) => `expected true or false, got ${show(issue.input)}` })
      .optional(),
    trust: z
      .enum(TRUST_MODES, { error: (issue) => `expected ${TRUST_MODES.join(', ')}, got ${show(issue.input)}` })
      .optional(),
    leaseMs: faultParameter('leaseMs'),
  })
  .refine((body) => body.workerRecovery !== undefined || body.trust !== undefined, {
    message: 'expected workerRecovery or trust (or both)',
  });

interface SettingsOverride {
  readonly workerRecovery?: boolean;
  readonly trust?: TrustMode;
}

const SETTINGS_SHAPE: BodyShape = { kinds: [], allowedKeys: () => ['workerRecovery', 'trust', 'leaseMs'] };

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** Resolves (never rejects) after `ms`, or at once when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The one id the settings override is kept under, in a lease book of its own. */
const OVERRIDE = 'worker-recovery';

export function createFaultAgent(options: FaultAgentOptions): FaultAgent {
  const { ctx } = options;
  const clock = options.clock ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? abortableSleep;

  const applied = counter(ctx.metrics, 'chaos_faults_applied_total', 'Faults applied (new leases)', ['kind']);
  const renewed = counter(ctx.metrics, 'chaos_faults_renewed_total', 'Fault leases renewed', ['kind']);
  const expired = counter(
    ctx.metrics,
    'chaos_faults_expired_total',
    'Fault leases that ran out without being renewed',
    ['kind'],
  );
  const injected = counter(
    ctx.metrics,
    'chaos_injected_total',
    'Times a fault actually hit a request or a background task',
    ['kind'],
  );
  // At zero from the start, so a dashboard sees every kind before the first injection.
  for (const kind of FAULT_KINDS) injected.inc({ kind }, 0);
  const leases = createLeaseBook<FaultKind, FaultParams>({
    clock,
    onExpire(lease) {
      expired.inc({ kind: lease.kind });
      ctx.log.info({ fault: lease }, 'fault lease expired');
    },
  });
  const overrides = createLeaseBook<'settings', SettingsOverride>({
    clock,
    onExpire() {
      ctx.log.info(
        { workerRecovery: options.workerRecoveryDefault, trust: options.trustDefault },
        'settings override expired',
      );
    },
  });

  if (!ctx.metrics.getSingleMetric('chaos_faults_active')) {
    new Gauge({
      name: 'chaos_faults_active',
      help: 'Fault leases in force',
      labelNames: ['kind'],
      registers: [ctx.metrics],
      collect() {
        const active = faults();
        for (const kind of FAULT_KINDS) this.set({ kind }, active.filter((f) => f.kind === kind).length);
      },
    });
    new Gauge({
      name: 'chaos_worker_recovery_enabled',
      help: 'Whether background tasks recover from panics now (1) or let them kill the process (0)',
      registers: [ctx.metrics],
      collect() {
        this.set(workerRecovery() ? 1 : 0);
      },
    });
  }

  function faults(): readonly FaultLease[] {
    return leases.list();
  }

  function workerRecovery(): boolean {
    return settings().workerRecovery;
  }

  function trustMode(): TrustMode {
    return overrides.get(OVERRIDE)?.params.trust ?? options.trustDefault ?? 'zero';
  }

  function settings(): WorkerSettings {
    const override = overrides.get(OVERRIDE);
    return {
      workerRecovery: override?.params.workerRecovery ?? options.workerRecoveryDefault,
      ...(options.trustDefault ? { trust: trustMode() } : {}),
      overridden: override !== undefined,
      ...(override ? { override: override.params } : {}),
      expiresAt: override ? override.expiresAt : null,
    };
  }

  function fires(percentage: number): boolean {
    return random() * 100 < percentage;
  }

  function shouldPanic(): boolean {
    for (const lease of faults()) {
      if (lease.kind === 'worker-panic' && fires(lease.params.percent ?? 0)) {
        injected.inc({ kind: lease.kind });
        return true;
      }
    }
    return false;
  }

  const middleware: RequestHandler = async (req, res, next) => {
    if (isInfraPath(req.path)) {
      next();
      return;
    }
    const active = faults();

    let totalDelay = 0;
    for (const lease of active) {
      if (lease.kind !== 'http-delay') continue;
      const jitter = lease.params.jitterMs ?? 0;
      totalDelay += Math.max(0, (lease.params.delayMs ?? 0) + (random() * 2 - 1) * jitter);
      injected.inc({ kind: lease.kind });
    }
    if (totalDelay > 0) {
      // A caller that gave up must not hold a timer (and then a handler) for nothing.
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.once('close', onClose);
      await sleep(totalDelay, gone.signal);
      res.off('close', onClose);
      if (gone.signal.aborted) return;
    }

    for (const lease of active) {
      if (lease.kind !== 'http-error' || !fires(lease.params.percent ?? 0)) continue;
      injected.inc({ kind: lease.kind });
      const status = lease.params.status ?? 500;
      if (status === 503) res.setHeader('retry-after', '1');
      // Answered here, not thrown: an injected failure is not a bug worth a stack trace.
      res.status(status).json({
        error: {
          status,
          reason: 'INJECTED_FAULT',
          message: 'injected http-error (chaos)',
          metadata: { fault: lease.id },
        },
        requestId: requestIdOf(req),
      });
      return;
    }
    next();
  };

  const router = leaseRouter({
    where: 'instance',
    token: options.token,
    kinds: FAULT_PARAMS,
    book: leases,
    maxFaults: MAX_AGENT_FAULTS,
    listing: (active) => ({
      service: ctx.service,
      instance: ctx.instanceId,
      faults: active,
      settings: settings(),
    }),
    onApplied: (lease, wasRenewed) => (wasRenewed ? renewed : applied).inc({ kind: lease.kind }),
    onCleared: () => overrides.clear(),
    extend: settingsRoutes,
    malformedReason: (path) => (path.startsWith('/settings') ? 'INVALID_SETTINGS' : 'INVALID_FAULT'),
  });

  function settingsRoutes(settingsRouter: Router): void {
    settingsRouter.get('/settings', (_req, res) => {
      res.json({ settings: settings() });
    });

    settingsRouter.put('/settings', (req, res) => {
      const parsed = parseBody(settingsBody, req.body, SETTINGS_SHAPE, 'INVALID_SETTINGS');
      if (!parsed.ok) throw parsed.error;
      const { workerRecovery: recovery, trust, leaseMs } = parsed.value;
      if (trust !== undefined) {
        const why = options.trustDefault ? options.cannotTrust?.(trust) : 'it has no trust setting';
        if (why) {
          throw new LabError({
            status: 409,
            reason: 'INVALID_SETTINGS',
            message: `${ctx.instanceId} cannot take trust ${trust}: ${why}`,
          });
        }
      }
      // A renewal that names one setting keeps the other's override.
      const current = overrides.get(OVERRIDE)?.params ?? {};
      const { lease } = overrides.apply(
        OVERRIDE,
        'settings',
        {
          ...current,
          ...(recovery !== undefined ? { workerRecovery: recovery } : {}),
          ...(trust !== undefined ? { trust } : {}),
        },
        leaseMs,
      );
      req.log.info({ settings: { ...lease.params, expiresAt: lease.expiresAt } }, 'settings overridden');
      res.json({ settings: settings() });
    });

    settingsRouter.delete('/settings', (req, res) => {
      overrides.clear();
      req.log.info('settings override removed');
      res.json({ settings: settings() });
    });
  }

  return {
    router,
    middleware,
    shouldPanic,
    workerRecovery,
    trustMode,
    faults,
    close() {
      leases.close();
      overrides.close();
    },
  };
}
