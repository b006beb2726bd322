/**
 * Numbers as a presenter reads them out: units always written, no false precision, and a dash where
 * nothing was measured. Independent of the machine's locale and time zone, so a report looks the same
 * wherever it is rendered.
 */
import { METRIC_UNITS, type Metric, type MetricUnit } from '../runner/experiment-schema.ts';

export const NONE = '—';

const GROUPED = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  return GROUPED.format(value);
}

/** `0.42 ms`, `4.2 ms`, `412 ms`, `2,013 ms`: milliseconds throughout, so a column compares at a glance. */
export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  const abs = Math.abs(value);
  if (abs === 0) return '0 ms';
  if (abs < 1) return `${Number(value.toPrecision(2))} ms`;
  if (abs < 10) return `${value.toFixed(1)} ms`;
  return `${GROUPED.format(value)} ms`;
}

/**
 * A share 0..1 as a percentage with one decimal, except that 100% and 0% are only written for exactly
 * all and nothing: 0.9996 is `99.96%`, not a rounded-up `100.0%` that would hide the failures.
 */
export function formatShare(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  if (value === 1) return '100%';
  if (value === 0) return '0%';
  const pct = value * 100;
  if (pct > 99.95 && pct < 100) return pct > 99.995 ? '>99.99%' : `${pct.toFixed(2)}%`;
  if (pct > 0 && pct < 0.05) return pct < 0.005 ? '<0.01%' : `${pct.toFixed(2)}%`;
  return `${pct.toFixed(1)}%`;
}

export function formatRps(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  return `${value.toFixed(1)} rps`;
}

export function formatByUnit(unit: MetricUnit, value: number | null | undefined): string {
  switch (unit) {
    case 'share':
      return formatShare(value);
    case 'duration':
      return formatMs(value);
    case 'rate':
      return formatRps(value);
    case 'count':
      return formatCount(value);
  }
}

export function metricUnit(metric: string): MetricUnit | undefined {
  return Object.hasOwn(METRIC_UNITS, metric) ? METRIC_UNITS[metric as Metric] : undefined;
}

/** A claim's measured value in its metric's unit; an unknown metric keeps its plain number. */
export function formatMetric(metric: string, value: number | null | undefined): string {
  const unit = metricUnit(metric);
  if (unit !== undefined) return formatByUnit(unit, value);
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  return String(Number(value.toPrecision(4)));
}

const OPERATOR_SIGNS: Readonly<Record<string, string>> = {
  '>=': '≥',
  '<=': '≤',
  '==': '=',
  '>': '>',
  '<': '<',
};
const EXPECTED_PATTERN = /^\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;
const DURATION_FACTORS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * `">= 0.99"` on successRate reads `≥ 99%`, `"< 350ms"` reads `< 350 ms`. Anything not in the runner's
 * normalised form is shown as written rather than guessed at.
 */
export function formatExpected(metric: string, expected: string): string {
  const match = EXPECTED_PATTERN.exec(expected);
  const unit = metricUnit(metric);
  if (!match || unit === undefined) return expected;
  const [, operator, number, suffix] = match;
  let value = Number(number);
  if (suffix !== undefined) {
    if (unit !== 'duration') return expected;
    value *= DURATION_FACTORS[suffix] ?? 1;
  }
  // A threshold is exact as written: `≥ 99%`, not the `99.0%` a measured share gets.
  const shown = unit === 'share' ? `${Number((value * 100).toPrecision(6))}%` : formatByUnit(unit, value);
  return `${OPERATOR_SIGNS[operator!] ?? operator} ${shown}`;
}

/**
 * Fault parameters and calibration figures by their names: `delayMs` is a duration, `percent` a
 * percentage, `lossRate` a share, `status` a plain code.
 */
export function formatParam(key: string, value: number): string {
  return `${humanKey(key)} ${formatParamValue(key, value)}`;
}

export function formatParams(params: Readonly<Record<string, number>>): string {
  const entries = Object.entries(params);
  return entries.length === 0 ? NONE : entries.map(([k, v]) => formatParam(k, v)).join(', ');
}

/** A value by its parameter's name: `delayMs` in milliseconds, `percent` in %, `lossRate` as a share. */
export function formatParamValue(key: string, value: number): string {
  if (/Ms$/.test(key)) return formatMs(value);
  if (/^percent$|Percent$/.test(key)) return `${Number(value.toPrecision(4))}%`;
  if (/(Rate|Share)$|^(rate|share)$/.test(key)) return formatShare(value);
  return String(Number(value.toPrecision(6)));
}

/** `addedLatencyMs` → `added latency`; `percent` → `percent`. */
export function humanKey(key: string): string {
  return key
    .replace(/Ms$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase();
}

/** `2025-06-01 14:03:12 UTC`; text that is not a date is shown as it is. */
export function formatDateTime(iso: string | null | undefined): string {
  const date = parseDate(iso);
  if (date === undefined) return iso ?? NONE;
  return `${date.toISOString().slice(0, 10)} ${date.toISOString().slice(11, 19)} UTC`;
}

/** `14:03:12.345` (UTC), for events within one run. */
export function formatTime(iso: string | null | undefined): string {
  const date = parseDate(iso);
  if (date === undefined) return iso ?? NONE;
  return date.toISOString().slice(11, 23);
}

/** `45 s`, `3 min 20 s`, `1 h 2 min`. */
export function formatElapsed(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return NONE;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return ms < 1000 && ms > 0 ? `${Math.round(ms)} ms` : `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 === 0 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function elapsedBetween(fromIso: string, toIso: string): number | null {
  const from = parseDate(fromIso);
  const to = parseDate(toIso);
  return from === undefined || to === undefined ? null : to.getTime() - from.getTime();
}

function parseDate(iso: string | null | undefined): Date | undefined {
  if (iso === null || iso === undefined || iso === '') return undefined;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
