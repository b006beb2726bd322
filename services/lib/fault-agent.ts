import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Router } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { type BodyShape, bearerAuth, bounded, describeIssue, show } from './admin-api.ts';
import { errors, type LabError } from './errors.ts';
import { createLeaseBook, FAULT_ID_PATTERN, LEASE_MS } from './leases.ts';
import { isInfraPath, requestIdOf, type ServiceContext } from './service-app.ts';

/**
 * The in-process half of fault injection, the same on every target: an admin API under
 * `/__chaos` that applies faults as leases, and the hooks that make them bite (a request
 * middleware for HTTP faults, a dice roll for background tasks).
 *
 * Every fault is a lease that ends by itself unless renewed, so a crashed or interrupted
 * experiment runner can never leave a service broken (the complaint most often made about
 * Chaos Mesh, Litmus and xk6-disruptor); the bookkeeping is shared with the fault proxy
 * (`leases.ts`).
 */

export const FAULT_KINDS = ['http-delay', 'http-error', 'worker-panic'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultLease {
  readonly id: string;
  readonly kind: FaultKind;
  readonly params: Record<string, number>;
  readonly leaseMs: number;
  readonly appliedAt: number;
  readonly expiresAt: number;
}

export interface FaultAgentOptions {
  readonly ctx: ServiceContext;
  /** Bearer token for the admin API. @default unset: the admin API answers 404 */
  readonly token?: string;
  /** Whether background tasks recover from panics when no override is in force. */
  readonly workerRecoveryDefault: boolean;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Resolves after `ms`, or as soon as `signal` aborts. @default a timer */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface WorkerSettings {
  readonly workerRecovery: boolean;
  readonly overridden: boolean;
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
  /** Active, unexpired faults, oldest first. */
  faults(): FaultLease[];
  close(): void;
}

export { FAULT_ID_PATTERN, LEASE_MS };

// Faults are plain declarative values, checked whole before anything is applied.

const leaseMs = bounded(LEASE_MS.min, LEASE_MS.max, true);
const percent = bounded(0, 100, false);
const delay = bounded(0, 60_000, true);

const PARAM_SCHEMAS = {
  'http-delay': z.strictObject({ delayMs: delay, jitterMs: delay.optional() }),
  'http-error': z.strictObject({ status: bounded(400, 599, true), percent }),
  'worker-panic': z.strictObject({ percent }),
} as const satisfies Record<FaultKind, z.ZodType>;

const faultBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('http-delay'), params: PARAM_SCHEMAS['http-delay'], leaseMs }),
  z.strictObject({ kind: z.literal('http-error'), params: PARAM_SCHEMAS['http-error'], leaseMs }),
  z.strictObject({ kind: z.literal('worker-panic'), params: PARAM_SCHEMAS['worker-panic'], leaseMs }),
]);

const settingsBody = z.strictObject({
  workerRecovery: z.boolean({ error: (issue) => `expected true or false, got ${show(issue.input)}` }),
  leaseMs,
});

const BODY_SHAPES: Record<'fault' | 'settings', BodyShape> = {
  fault: {
    kinds: FAULT_KINDS,
    allowedKeys: (path, body) => {
      if (path.length === 0) return ['kind', 'params', 'leaseMs'];
      const params = PARAM_SCHEMAS[(body as { kind?: unknown }).kind as FaultKind];
      return params ? Object.keys(params.shape) : [];
    },
  },
  settings: { kinds: [], allowedKeys: () => ['workerRecovery', 'leaseMs'] },
};

function parseBody<T>(
  schema: z.ZodType<T>,
  body: unknown,
  kind: 'fault' | 'settings',
): { ok: true; value: T } | { ok: false; error: LabError } {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const first = result.error.issues[0];
  const { field, reason } = first
    ? describeIssue(first, body, BODY_SHAPES[kind])
    : { field: 'body', reason: 'is invalid' };
  return { ok: false, error: invalid(kind, field, reason) };
}

function invalid(kind: 'fault' | 'settings', field: string, reason: string): LabError {
  return errors.badRequest(kind === 'fault' ? 'INVALID_FAULT' : 'INVALID_SETTINGS', `${field}: ${reason}`, {
    field,
  });
}

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
  const leases = createLeaseBook<FaultKind, Record<string, number>>({
    clock,
    onExpire(lease) {
      expired.inc({ kind: lease.kind });
      ctx.log.info({ fault: lease }, 'fault lease expired');
    },
  });
  const overrides = createLeaseBook<'settings', { readonly workerRecovery: boolean }>({
    clock,
    onExpire() {
      ctx.log.info({ workerRecovery: options.workerRecoveryDefault }, 'settings override expired');
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

  function faults(): FaultLease[] {
    return leases.list();
  }

  function workerRecovery(): boolean {
    return settings().workerRecovery;
  }

  function settings(): WorkerSettings {
    const override = overrides.get(OVERRIDE);
    return {
      workerRecovery: override ? override.params.workerRecovery : options.workerRecoveryDefault,
      overridden: override !== undefined,
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

  const router = express.Router();

  router.use(bearerAuth(options.token, 'instance'));
  router.use(express.json());

  const listing = () => ({
    service: ctx.service,
    instance: ctx.instanceId,
    faults: faults(),
    settings: settings(),
  });

  router.get('/faults', (_req, res) => {
    res.json(listing());
  });

  router.put('/faults/:id', (req: Request<{ id: string }>, res) => {
    const { id } = req.params;
    if (!FAULT_ID_PATTERN.test(id)) {
      throw invalid(
        'fault',
        'id',
        `expected lowercase letters, digits and dashes (1-64, starting with a letter or digit), got ${show(id)}`,
      );
    }
    const parsed = parseBody(faultBody, req.body, 'fault');
    if (!parsed.ok) throw parsed.error;
    const { kind, params, leaseMs: ms } = parsed.value;
    const normalized: Record<string, number> =
      kind === 'http-delay' ? { delayMs: params.delayMs, jitterMs: params.jitterMs ?? 0 } : { ...params };

    const { lease, renewed: wasRenewed } = leases.apply(id, kind, Object.freeze(normalized), ms);
    if (wasRenewed) renewed.inc({ kind });
    else applied.inc({ kind });
    req.log.info({ fault: lease, renewed: wasRenewed }, 'fault applied');
    res.status(wasRenewed ? 200 : 201).json({ fault: lease });
  });

  router.delete('/faults/:id', (req: Request<{ id: string }>, res) => {
    const removed = leases.remove(req.params.id);
    if (removed) req.log.info({ id: req.params.id }, 'fault removed');
    res.json({ removed });
  });

  router.delete('/faults', (req, res) => {
    const removed = leases.clear();
    overrides.clear();
    req.log.info({ removed }, 'faults cleared');
    res.json({ removed });
  });

  router.get('/settings', (_req, res) => {
    res.json({ settings: settings() });
  });

  router.put('/settings', (req, res) => {
    const parsed = parseBody(settingsBody, req.body, 'settings');
    if (!parsed.ok) throw parsed.error;
    const { lease } = overrides.apply(
      OVERRIDE,
      'settings',
      { workerRecovery: parsed.value.workerRecovery },
      parsed.value.leaseMs,
    );
    req.log.info(
      { settings: { workerRecovery: lease.params.workerRecovery, expiresAt: lease.expiresAt } },
      'settings overridden',
    );
    res.json({ settings: settings() });
  });

  router.delete('/settings', (req, res) => {
    overrides.clear();
    req.log.info('settings override removed');
    res.json({ settings: settings() });
  });

  // A body that is not JSON at all is a bad fault too, answered in the same shape.
  const malformed: ErrorRequestHandler = (err, req, _res, next) => {
    if ((err as { type?: unknown }).type === 'entity.parse.failed') {
      next(
        invalid(
          req.path.startsWith('/settings') ? 'settings' : 'fault',
          'body',
          `not valid JSON (${(err as Error).message})`,
        ),
      );
      return;
    }
    next(err);
  };
  router.use(malformed);

  return {
    router,
    middleware,
    shouldPanic,
    workerRecovery,
    faults,
    close() {
      leases.close();
      overrides.close();
    },
  };
}
