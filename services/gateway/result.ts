import type { LabError } from '../lib/errors.ts';

/** Failures travel as values inside the gateway; only the edge turns them into HTTP answers. */
export type Result<T> = { readonly ok: true; readonly value: T } | Failure;

export interface Failure {
  readonly ok: false;
  readonly error: LabError;
}

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail(error: LabError): Failure {
  return { ok: false, error };
}
