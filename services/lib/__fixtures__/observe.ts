import { type Logger, pino } from 'pino';
import type { Registry } from 'prom-client';

/** Test helpers that look at a service from outside: its log lines and its metrics. */

export interface CapturedLog {
  readonly log: Logger;
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[];
}

/** A real pino logger whose JSON lines land in memory instead of stdout. */
export function captureLog(level = 'info'): CapturedLog {
  const raw: string[] = [];
  const log = pino({ level }, { write: (line: string) => raw.push(line) });
  return { log, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** Sum of a counter's or gauge's samples whose labels include `labels`; 0 when absent. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Waits, a tick at a time, until `done()` holds; fails after `maxTicks` ticks. */
export async function untilTrue(done: () => boolean, what: string, maxTicks = 1_000): Promise<void> {
  for (let tick = 0; tick < maxTicks; tick++) {
    if (done()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`still waiting after ${maxTicks} ticks for ${what}`);
}
