import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { FAULT_BOUNDS, type FaultBound, type FaultParameter } from '../fault-bounds.ts';
import { errors, type LabError } from './errors.ts';

/**
 * What every fault admin API (`/__chaos` of the fault agent and of the fault proxy) shares,
 * so one client speaks to both: the bearer-token rules, and request bodies checked whole by
 * zod with the first problem told as `<field>: <reason>`.
 */

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** True when `given` is `token`, in a time that does not depend on how much of it matches. */
export function tokenMatches(given: string, token: string): boolean {
  // Digests have equal lengths, so the comparison takes the same time for every guess.
  return given.length > 0 && timingSafeEqual(digest(given), digest(token));
}

/**
 * No token configured → every path answers 404 CHAOS_ADMIN_DISABLED (the admin API is off);
 * a missing or wrong bearer token → 401.
 * @param where what runs this API, for the message: `instance`, `proxy`
 */
export function bearerAuth(token: string | undefined, where: string): RequestHandler {
  return (req, res, next) => {
    if (!token) {
      throw errors.notFound(
        'CHAOS_ADMIN_DISABLED',
        `the fault admin API is off on this ${where}: start it with CHAOS_ADMIN_TOKEN set`,
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1] || !tokenMatches(match[1], token)) {
      res.setHeader('www-authenticate', 'Bearer realm="chaos"');
      throw errors.unauthorized(
        'UNAUTHORIZED',
        'missing or wrong admin token: send authorization: Bearer <CHAOS_ADMIN_TOKEN>',
      );
    }
    next();
  };
}

/** A value as a message shows it: `nothing`, `150`, `"fast"`. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** A number within the bound whose error says the range and what was given. */
export function bounded({ min, max, integer }: FaultBound) {
  const expected = `expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`;
  const message = (issue: { input?: unknown }) => `${expected}, got ${show(issue.input)}`;
  return z
    .number({ error: message })
    .refine((v) => Number.isFinite(v) && (!integer || Number.isInteger(v)) && v >= min && v <= max, {
      error: message,
    });
}

/** A fault parameter within its bound in `fault-bounds.ts`, the same for every injector. */
export function faultParameter(name: FaultParameter) {
  return bounded(FAULT_BOUNDS[name]);
}

export interface BodyShape {
  /** The values `kind` may take, for the message when it takes another. */
  readonly kinds: readonly string[];
  /** The keys allowed in the object at `path` of `body`, for "unknown key" messages. */
  allowedKeys(path: readonly PropertyKey[], body: unknown): readonly string[];
}

/** The first problem of a body as `<path>: <reason>`, with the path on its own for metadata. */
export function describeIssue(
  issue: z.core.$ZodIssue,
  body: unknown,
  shape: BodyShape,
): { field: string; reason: string } {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '?';
    const allowed = shape.allowedKeys(issue.path, body);
    return {
      field: [...path, key].join('.'),
      reason: `unknown key; expected ${allowed.length > 0 ? allowed.join(', ') : 'no other key'}`,
    };
  }
  if (issue.code === 'invalid_union' && path.at(-1) === 'kind') {
    return {
      field: 'kind',
      reason: `expected one of ${shape.kinds.join(', ')}, got ${show((body as { kind?: unknown }).kind)}`,
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

/** A 400 whose message is `<field>: <problem>` and whose metadata names the field. */
export function invalidField(reason: string, field: string, problem: string): LabError {
  return errors.badRequest(reason, `${field}: ${problem}`, { field });
}

/** The body `schema` accepts, or a 400 with `reason` naming its first problem. */
export function parseBody<T>(
  schema: z.ZodType<T>,
  body: unknown,
  shape: BodyShape,
  reason: string,
): { ok: true; value: T } | { ok: false; error: LabError } {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const first = result.error.issues[0];
  const { field, reason: problem } = first
    ? describeIssue(first, body, shape)
    : { field: 'body', reason: 'is invalid' };
  return { ok: false, error: invalidField(reason, field, problem) };
}
