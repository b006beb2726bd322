import { z } from 'zod';
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

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

function bounded(min: number, max: number, integer: boolean) {
  const expected = `expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`;
  const message = (issue: { input?: unknown }) => `${expected}, got ${show(issue.input)}`;
  return z
    .number({ error: message })
    .refine((v) => Number.isFinite(v) && (!integer || Number.isInteger(v)) && v >= min && v <= max, {
      error: message,
    });
}

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

function describeIssue(issue: z.core.$ZodIssue, body: unknown): { field: string; reason: string } {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '?';
    const kind = (body as { kind?: unknown }).kind as ProxyFaultKind;
    const allowed =
      path.length === 0 ? ['kind', 'params', 'leaseMs'] : Object.keys(PARAM_SCHEMAS[kind]?.shape ?? {});
    return {
      field: [...path, key].join('.'),
      reason: `unknown key; expected ${allowed.length > 0 ? allowed.join(', ') : 'no other key'}`,
    };
  }
  if (issue.code === 'invalid_union' && path.at(-1) === 'kind') {
    return {
      field: 'kind',
      reason: `expected one of ${PROXY_FAULT_KINDS.join(', ')}, got ${show((body as { kind?: unknown }).kind)}`,
    };
  }
  if (path.length === 0) {
    return { field: 'body', reason: 'expected a JSON object (send content-type: application/json)' };
  }
  if (issue.code === 'invalid_type' && issue.expected === 'object') {
    return { field: path.join('.'), reason: 'expected an object' };
  }
  return { field: path.join('.'), reason: issue.message };
}

/** The fault a request body asks for, or a 400 INVALID_FAULT naming the first bad field. */
export function parseFault(
  body: unknown,
): { ok: true; value: FaultRequest } | { ok: false; error: LabError } {
  const result = faultBody.safeParse(body);
  if (!result.success) {
    const first = result.error.issues[0];
    const { field, reason } = first ? describeIssue(first, body) : { field: 'body', reason: 'is invalid' };
    return { ok: false, error: invalidFault(field, reason) };
  }
  const { kind, params, leaseMs: ms } = result.data;
  const normalized: Record<string, number> =
    kind === 'latency' ? { delayMs: params.delayMs, jitterMs: params.jitterMs ?? 0 } : { ...params };
  return { ok: true, value: { kind, params: Object.freeze(normalized), leaseMs: ms } };
}
