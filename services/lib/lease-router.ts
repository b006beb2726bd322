import express, { type ErrorRequestHandler, type Request, type Router } from 'express';
import { z } from 'zod';
import { FAULT_ID_EXPECTED, FAULT_ID_PATTERN } from '../fault-bounds.ts';
import { type BodyShape, bearerAuth, faultParameter, invalidField, parseBody, show } from './admin-api.ts';
import { errors } from './errors.ts';
import type { Lease, LeaseBook } from './leases.ts';

/**
 * The lease routes every injector serves under `/__chaos` (the fault agent inside each
 * service, the fault proxy in front of each instance), written once so that one client and
 * one contract test (`lease-router.contract.test.ts`) speak to both:
 *
 * - `GET /faults` → 200, the active faults and what the injector says beside them;
 * - `PUT /faults/:id` `{ kind, params, leaseMs }` → 201 `{ fault }` when new, 200 when renewed; 409
 *   TOO_MANY_FAULTS for a new one when `maxFaults` are in force already (a renewal is always taken);
 * - `DELETE /faults/:id` → 200 `{ removed: boolean }`;
 * - `DELETE /faults` → 200 `{ removed: number }`.
 *
 * All behind the bearer token of `admin-api.ts`; a bad id or body (not JSON included) is a
 * 400 INVALID_FAULT whose message starts with the field.
 */

export { FAULT_ID_EXPECTED, FAULT_ID_PATTERN };

/** The id of a lease route, or 400 INVALID_FAULT: the same rule on every route. */
function checkedId(id: string): string {
  if (!FAULT_ID_PATTERN.test(id)) {
    throw invalidField(INVALID_FAULT, 'id', `expected ${FAULT_ID_EXPECTED}, got ${show(id)}`);
  }
  return id;
}

/** The parameters of a delay, alike for the agent's http-delay and the proxy's latency. */
export const DELAY_PARAMS = z.strictObject({
  delayMs: faultParameter('delayMs'),
  jitterMs: faultParameter('jitterMs').default(0),
});

/** Normalized: every optional parameter filled in, frozen. */
export type FaultParams = Readonly<Record<string, number>>;

/** The parameters one kind takes, checked whole; an optional one has a default. */
export type ParamsSchema = z.ZodObject<z.core.$ZodShape, z.core.$strict>;

export interface LeaseRouterOptions<K extends string> {
  /** What serves this API, for the messages: `instance`, `proxy`. */
  readonly where: string;
  /** @default unset: every path answers 404 CHAOS_ADMIN_DISABLED */
  readonly token?: string | undefined;
  /** Each kind with its parameters, in the order a message lists the kinds. */
  readonly kinds: { readonly [kind in K]: ParamsSchema };
  readonly book: LeaseBook<K, FaultParams>;
  /** The most faults in force at once; one more is refused, a renewal of one of them is not. */
  readonly maxFaults: number;
  /** The body of `GET /faults`, around the active faults. */
  listing(faults: readonly Lease<K, FaultParams>[]): Record<string, unknown>;
  /** Told of each lease once the book holds it, new or renewed (for metrics). */
  onApplied?(lease: Lease<K, FaultParams>, renewed: boolean): void;
  /** Told once `DELETE /faults` has emptied the book, to end what else the injector keeps. */
  onCleared?(): void;
  /** Adds the injector's own routes behind the same token and JSON parser. */
  extend?(router: Router): void;
  /** The reason of the 400 for a body that is not JSON at `path`. @default INVALID_FAULT */
  malformedReason?(path: string): string;
}

interface FaultRequest<K extends string> {
  readonly kind: K;
  readonly params: FaultParams;
  readonly leaseMs: number;
}

const INVALID_FAULT = 'INVALID_FAULT';
const TOO_MANY_FAULTS = 'TOO_MANY_FAULTS';

function faultBody<K extends string>(kinds: LeaseRouterOptions<K>['kinds']): z.ZodType<FaultRequest<K>> {
  const leaseMs = faultParameter('leaseMs');
  const options = Object.entries<ParamsSchema>(kinds).map(([kind, params]) =>
    z.strictObject({ kind: z.literal(kind), params, leaseMs }),
  );
  // A union built from a record is typed by its widest member; the kinds and numbers are as declared.
  return z.discriminatedUnion('kind', options as [(typeof options)[number]]) as unknown as z.ZodType<
    FaultRequest<K>
  >;
}

export function leaseRouter<K extends string>(options: LeaseRouterOptions<K>): Router {
  const { book, kinds } = options;
  const body = faultBody(kinds);
  const shape: BodyShape = {
    kinds: Object.keys(kinds),
    allowedKeys: (path, given) => {
      if (path.length === 0) return ['kind', 'params', 'leaseMs'];
      const kind = (given as { kind?: unknown }).kind as K;
      return Object.hasOwn(kinds, kind) ? Object.keys(kinds[kind].shape) : [];
    },
  };

  // Strict: `/faults/` is not `/faults`. A client that sends the id `.` sends `/faults/.`, which URL
  // normalisation makes `/faults/`; without strict routing that was DELETE-all.
  const router = express.Router({ strict: true });
  router.use(bearerAuth(options.token, options.where));
  router.use(express.json());

  router.get('/faults', (_req, res) => {
    res.json(options.listing(book.list()));
  });

  router.put('/faults/:id', (req: Request<{ id: string }>, res) => {
    const id = checkedId(req.params.id);
    const parsed = parseBody(body, req.body, shape, INVALID_FAULT);
    if (!parsed.ok) throw parsed.error;
    const { kind, params, leaseMs } = parsed.value;
    const inForce = book.list();
    if (inForce.length >= options.maxFaults && !inForce.some((l) => l.id === id)) {
      throw errors.conflict(
        TOO_MANY_FAULTS,
        `too many faults: ${inForce.length} in force on this ${options.where}, which takes at most ${options.maxFaults}; remove one first (DELETE /__chaos/faults/:id), or renew one in force (PUT with its id)`,
        { inForce: String(inForce.length), limit: String(options.maxFaults) },
      );
    }
    const { lease, renewed } = book.apply(id, kind, Object.freeze({ ...params }), leaseMs);
    options.onApplied?.(lease, renewed);
    req.log.info({ fault: lease, renewed }, 'fault applied');
    res.status(renewed ? 200 : 201).json({ fault: lease });
  });

  router.delete('/faults/:id', (req: Request<{ id: string }>, res) => {
    const id = checkedId(req.params.id);
    const removed = book.remove(id);
    if (removed) req.log.info({ id }, 'fault removed');
    res.json({ removed });
  });

  router.delete('/faults', (req, res) => {
    const removed = book.clear();
    options.onCleared?.();
    req.log.info({ removed }, 'faults cleared');
    res.json({ removed });
  });

  options.extend?.(router);

  // A body that is not JSON at all is a bad body too, answered in the same shape.
  const malformed: ErrorRequestHandler = (err, req, _res, next) => {
    if ((err as { type?: unknown }).type === 'entity.parse.failed') {
      const reason = options.malformedReason?.(req.path) ?? INVALID_FAULT;
      next(invalidField(reason, 'body', `not valid JSON (${(err as Error).message})`));
      return;
    }
    next(err);
  };
  router.use(malformed);
  return router;
}
