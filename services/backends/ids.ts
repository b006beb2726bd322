import { errors } from '../lib/errors.ts';

/** Largest id any backend accepts; beyond it an id cannot be one of ours, nor exact in JSON. */
const MAX_ID = Number.MAX_SAFE_INTEGER;

/** A route's `:mid` / `:aid` as a positive integer, or 400 INVALID_ID naming the parameter. */
export function parseId(raw: string, name: 'mid' | 'aid'): number {
  const id = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_ID) {
    throw errors.badRequest(
      'INVALID_ID',
      `${name} must be a positive integer (e.g. 42), got ${JSON.stringify(raw)}`,
      { field: name },
    );
  }
  return id;
}
