/**
 * Leaves of the lab's zod schemas, each with its own error text (`expecting(...)`), so that a rejected
 * value is answered with what would be valid, in the lab's words, not zod's: the experiment file's
 * schema (runner/experiment-schema.ts) and the fault kinds' fields (faults/kinds/) both use them.
 */
import { z } from 'zod';
import { DURATION_EXAMPLES, formatDuration, parseDuration } from './duration.ts';

/**
 * The duration grammar of `lab/duration.ts` (the CLI's), spelled as a JSON Schema pattern so editors check
 * it as you type; `parseDuration` stays the judge (it also refuses fractions of a millisecond).
 */
export const DURATION_PATTERN = '^(\\d+(?:\\.\\d+)?)(ms|s|m|h)$';
export const DURATION_EXPECTED = `a duration with a unit, such as ${DURATION_EXAMPLES}`;

export function tryParseDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

type RawIssue = z.core.$ZodRawIssue;

/** How a rejected value is named in a message: `got 150`, `got "coin"`, `missing`. */
export function problemOf(issue: { input?: unknown }): string {
  return issue.input === undefined ? 'missing' : `got ${show(issue.input)}`;
}

export function show(value: unknown): string {
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

export function expecting(what: string) {
  return {
    // Unknown keys fall through to the parse-level map, which lists the keys that are known.
    error: (issue: RawIssue) =>
      issue.code === 'unrecognized_keys' ? undefined : `${problemOf(issue)}; expected ${what}`,
  };
}

export function oneOf(values: readonly string[]): string {
  return values.length === 1 ? String(values[0]) : `one of ${values.join(', ')}`;
}

export function durationField(range: { min: number; max: number }, description: string) {
  const span = `${DURATION_EXPECTED}, from ${formatDuration(range.min)} to ${formatDuration(range.max)}`;
  return z
    .string(expecting(span))
    .regex(new RegExp(DURATION_PATTERN), expecting(span))
    .refine((text) => {
      // A string the pattern refuses is already reported; one message per mistake.
      if (!new RegExp(DURATION_PATTERN).test(text)) return true;
      const ms = tryParseDuration(text);
      return ms !== undefined && ms >= range.min && ms <= range.max;
    }, expecting(span))
    .describe(`${description} A string with a unit: ms, s, m or h (e.g. 300ms, 1.5s, 20s, 2m).`);
}

const PERCENT_EXPECTED = 'a percentage from 0 to 100';
export const percentField = (description: string) =>
  z
    .number(expecting(PERCENT_EXPECTED))
    .min(0, expecting(PERCENT_EXPECTED))
    .max(100, expecting(PERCENT_EXPECTED))
    .describe(description);

const STATUS_EXPECTED = 'an HTTP status code from 400 to 599';
export const statusField = (description: string) =>
  z
    .number(expecting(STATUS_EXPECTED))
    .int(expecting(STATUS_EXPECTED))
    .min(400, expecting(STATUS_EXPECTED))
    .max(599, expecting(STATUS_EXPECTED))
    .describe(description);
