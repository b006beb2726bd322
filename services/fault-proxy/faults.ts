import { z } from 'zod';
import { type BodyShape, bounded, describeIssue, show } from '../lib/admin-api.ts';
import { errors, type LabError } from '../lib/errors.ts';
import { LEASE_MS, type Lease } from '../lib/leases.ts';

/**
 * The network faults the proxy injects, as plain declarative values checked whole before
 * anything is applied. The body of `PUT /__chaos/faults/:id` and its error messages follow
 * the fault agent's, so one client speaks to both.
 */

export const PROXY_FAULT_KINDS = ['latency', 'loss', 'reset'] as const;
export type ProxyFaultKind = (typeof PROXY_FAULT_KINDS)[number];

export type ProxyFault = Lease<ProxyFaultKind, Readonly<Record<string, number>>>;

export const MAX_DELAY_MS = 60_000;

const leaseMs = bounded(LEASE_MS.min, LEASE_MS.max, true);
const percent = bounded(0, 100, false);
const delay = bounded(0, MAX_DELAY_MS, true);

const PARAM_SCHEMAS = {
  latency: z.strictObject({ delayMs: delay, jitterMs: delay.optional() }),
  loss: z.strictObject({ percent }),
  reset: z.strictObject({ percent }),
} as const satisfies Record<ProxyFaultKind, z.ZodType>;

const faultBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('latency'), params: PARAM_SCHEMAS.latency, leaseMs }),
  z.strictObject({ kind: z.literal('loss'), params: PARAM_SCHEMAS.loss, leaseMs }),
  z.strictObject({ kind: z.literal('reset'), params: PARAM_SCHEMAS.reset, leaseMs }),
]);

export interface FaultRequest {
  readonly kind: ProxyFaultKind;
  /** Normalized: every optional parameter filled in. */
  readonly params: Readonly<Record<string, number>>;
  readonly leaseMs: number;
}

export function invalidFault(field: string, reason: string): LabError {
  return errors.badRequest('INVALID_FAULT', `${field}: ${reason}`, { field });
}

export function invalidFaultId(id: string): LabError {
  return invalidFault(
    'id',
    `expected lowercase letters, digits and dashes (1-64, starting with a letter or digit), got ${show(id)}`,
  );
}

const BODY_SHAPE: BodyShape = {
  kinds: PROXY_FAULT_KINDS,
  allowedKeys: (path, body) =>
    path.length === 0
      ? ['kind', 'params', 'leaseMs']
      : Object.keys(PARAM_SCHEMAS[(body as { kind?: unknown }).kind as ProxyFaultKind]?.shape ?? {}),
};

/** The fault a request body asks for, or a 400 INVALID_FAULT naming the first bad field. */
export function parseFault(
  body: unknown,
): { ok: true; value: FaultRequest } | { ok: false; error: LabError } {
  const result = faultBody.safeParse(body);
  if (!result.success) {
    const first = result.error.issues[0];
    const { field, reason } = first
      ? describeIssue(first, body, BODY_SHAPE)
      : { field: 'body', reason: 'is invalid' };
    return { ok: false, error: invalidFault(field, reason) };
  }
  const { kind, params, leaseMs: ms } = result.data;
  const normalized: Record<string, number> =
    kind === 'latency' ? { delayMs: params.delayMs, jitterMs: params.jitterMs ?? 0 } : { ...params };
  return { ok: true, value: { kind, params: Object.freeze(normalized), leaseMs: ms } };
}
