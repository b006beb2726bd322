/**
 * The bounds of every fault parameter, read by each layer that checks one: the fault agent and
 * the fault proxy when a fault is applied, and the experiment schema and the CLI before
 * anything runs, so a value one layer accepts is never refused by the next.
 *
 * Plain data, with no dependency, so that every layer can import it.
 */

export interface FaultBound {
  readonly min: number;
  readonly max: number;
  /** Whether only whole numbers are allowed. */
  readonly integer: boolean;
}

export const FAULT_BOUNDS = {
  /** Added to every request (http-delay), or to every call's round trip (latency). */
  delayMs: { min: 0, max: 60_000, integer: true },
  /** Random spread, ± up to this, around `delayMs`. */
  jitterMs: { min: 0, max: 60_000, integer: true },
  /** The share of a latency's delay and jitter paid on the way to the backend; the rest on the way back. */
  requestShare: { min: 0, max: 1, integer: false },
  /** Share of requests, tasks, segments or connections hit. */
  percent: { min: 0, max: 100, integer: false },
  /** The status an http-error answers with. */
  status: { min: 400, max: 599, integer: true },
  /** How long a fault lasts unless renewed: long enough for a slow runner, short enough to end by itself. */
  leaseMs: { min: 100, max: 3_600_000, integer: true },
} as const satisfies Record<string, FaultBound>;

export type FaultParameter = keyof typeof FAULT_BOUNDS;

/** A lease's id, on every lease route and every command: it is a path segment, so `.` or `..` never are. */
export const FAULT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const FAULT_ID_EXPECTED =
  'lowercase letters, digits and dashes (1-64, starting with a letter or digit)';
