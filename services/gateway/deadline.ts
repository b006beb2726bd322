import { errors } from '../lib/errors.ts';
import { fail, ok, type Result } from './result.ts';

/** Header in which a caller says how long it will wait for the page, in milliseconds. */
export const REQUEST_TIMEOUT_HEADER = 'x-request-timeout';
export const MAX_BUDGET_MS = 600_000;

/** The page budget a caller asked for, or `fallbackMs` when it asked for none. */
export function parseBudget(raw: string | string[] | undefined, fallbackMs: number): Result<number> {
  if (raw === undefined) return ok(fallbackMs);
  const text = Array.isArray(raw) ? raw[0] : raw;
  const value = /^\d{1,9}$/.test(text ?? '') ? Number(text) : Number.NaN;
  if (!(value >= 1 && value <= MAX_BUDGET_MS)) {
    return fail(
      errors.badRequest(
        'INVALID_TIMEOUT',
        `${REQUEST_TIMEOUT_HEADER}: expected whole milliseconds from 1 to ${MAX_BUDGET_MS}, got ${JSON.stringify(raw)}`,
        { header: REQUEST_TIMEOUT_HEADER },
      ),
    );
  }
  return ok(value);
}

/**
 * What is left of one page's budget. Each dependency call gets its own deadline carved from
 * it: never longer than the dependency's own deadline, never longer than what remains, so a
 * slow strong dependency cannot make the page outlive its caller's patience.
 */
export class PageBudget {
  readonly #deadline: number;
  readonly #clock: () => number;

  constructor(budgetMs: number, clock: () => number = Date.now) {
    this.#clock = clock;
    this.#deadline = clock() + budgetMs;
  }

  remainingMs(): number {
    return Math.max(0, this.#deadline - this.#clock());
  }

  /** The deadline for one call to a dependency whose own deadline is `dependencyDeadlineMs`. */
  callDeadlineMs(dependencyDeadlineMs: number): number {
    return Math.min(dependencyDeadlineMs, this.remainingMs());
  }
}

export interface Deadline {
  /** Aborts, with a timeout LabError as its reason, when the deadline passes. */
  readonly signal: AbortSignal;
  /** Stops the timer; call when the guarded work is over. */
  clear(): void;
}

/** An AbortSignal that fires after `timeoutMs`, to be passed down to the HTTP client. */
export function startDeadline(timeoutMs: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(errors.timeout('DEADLINE_EXCEEDED', `deadline of ${timeoutMs} ms exceeded`)),
    Math.max(0, timeoutMs),
  );
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
