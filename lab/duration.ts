import { InvalidArgumentError } from 'commander';

/**
 * Durations on the command line: a number and a unit, nothing implicit. A bare `300` is
 * refused because half the tools people know read it as seconds and the other half as
 * milliseconds.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

export const DURATION_EXAMPLES = '300ms, 1.5s, 20s or 2m';

export class DurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationError';
  }
}

/** Milliseconds in `text` (`300ms`, `1.5s`, `20s`, `2m`, `1h`); whole milliseconds only. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  if (!match) {
    throw new DurationError(
      `${JSON.stringify(text)} is not a duration: use a number with a unit (ms, s, m, h), e.g. ${DURATION_EXAMPLES}`,
    );
  }
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  // 1.0005s would silently become 1000 or 1001 ms; say so instead of guessing.
  const whole = Math.round(ms);
  if (Math.abs(ms - whole) > 1e-6 || !Number.isSafeInteger(whole)) {
    throw new DurationError(`${JSON.stringify(text)} is not a whole number of milliseconds`);
  }
  return whole;
}

/** `1500` → `1.5s`, `120000` → `2m`: the inverse of parseDuration, for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1_000).toFixed(1))}s`;
  if (ms < 3_600_000) return `${Number((ms / 60_000).toFixed(1))}m`;
  return `${Number((ms / 3_600_000).toFixed(1))}h`;
}

/**
 * A commander argument parser for a duration flag within `range`: a bad value stops the
 * command with exit 2 and a message naming the flag and giving examples.
 */
export function durationArgument(flag: string, range: { min: number; max: number }): (raw: string) => number {
  return (raw) => {
    let ms: number;
    try {
      ms = parseDuration(raw);
    } catch (err) {
      if (err instanceof DurationError) throw new InvalidArgumentError(`${err.message}.`);
      throw err;
    }
    if (ms < range.min || ms > range.max) {
      throw new InvalidArgumentError(
        `${flag} must be from ${formatDuration(range.min)} to ${formatDuration(range.max)}, e.g. ${DURATION_EXAMPLES}.`,
      );
    }
    return ms;
  };
}
