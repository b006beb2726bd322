/**
 * The end-of-test summaries of the k6 scripts: a digest of k6's summary data per gateway (and per step of
 * the ramp), the JSON written to a file, and a text table for the terminal.
 *
 * k6 prints its own text summary only when a script has no `handleSummary`, and its text renderer is not
 * importable from a script (k6 v2 keeps it internal; jslib.k6.io would need the internet), so the table is
 * drawn here. k6 reports a tagged breakdown (`page_duration{gateway:naive}`) only for the selectors the
 * script names in `thresholds`: `lensThresholds` names the ones the digest reads, with thresholds that
 * always pass (the SLO's real thresholds are `sloThresholds`).
 *
 * Plain TypeScript, no k6 import: the unit tests run it on a summary captured from a real k6 run.
 */
import { CHECKS, type Gateway, METRICS, SLO, SUMMARY_CLASSES } from './config.ts';

// ---------------------------------------------------------------------------------------------------------
// k6's summary data (the argument of handleSummary), as far as it is read here

interface K6Metric {
  readonly type: string;
  readonly values: Readonly<Record<string, number>>;
  readonly thresholds?: Readonly<Record<string, { readonly ok: boolean }>>;
}

export interface K6SummaryData {
  readonly metrics: Readonly<Record<string, K6Metric>>;
  readonly state: { readonly testRunDurationMs: number };
}

/** `page_duration{gateway:naive,class:ok}`: a metric narrowed to some tag values, as k6 spells it. */
export function selector(metric: string, tags: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(tags).map(([key, value]) => `${key}:${value}`);
  return pairs.length === 0 ? metric : `${metric}{${pairs.join(',')}}`;
}

/** Trend values the digests read; `count` is how many samples. */
export const TREND_STATS = ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max', 'count'];

const SUCCESS_THRESHOLD = `rate>=${SLO.successRate}`;
const P99_THRESHOLD = `p(99)<${SLO.p99Ms}`;

/** The SLO as k6 thresholds, per gateway: when one fails, k6 exits 99. */
export function sloThresholds(gateways: readonly Gateway[]): Record<string, string[]> {
  return Object.fromEntries(
    gateways.flatMap((g) => [
      [selector(METRICS.success, { gateway: g.name }), [SUCCESS_THRESHOLD]],
      [selector(METRICS.duration, { gateway: g.name }), [P99_THRESHOLD]],
    ]),
  );
}

/**
 * Thresholds that always pass, only so that k6 keeps the breakdowns the digest reads: per gateway (and per
 * `extra` tag set, e.g. each step of the ramp) the pages sent, their latency, their success, each class and
 * each check.
 */
export function lensThresholds(
  gateways: readonly Gateway[],
  extra: readonly Readonly<Record<string, string>>[] = [{}],
): Record<string, string[]> {
  const lens: Record<string, string[]> = {};
  for (const g of gateways) {
    lens[selector('dropped_iterations', { scenario: g.name })] = ['count>=0'];
    for (const more of extra) {
      const tags = { gateway: g.name, ...more };
      lens[selector(METRICS.sent, tags)] = ['count>=0'];
      lens[selector(METRICS.duration, tags)] = ['max>=0'];
      lens[selector(METRICS.success, tags)] = ['rate>=0'];
      for (const outcome of SUMMARY_CLASSES)
        lens[selector(METRICS.duration, { ...tags, class: outcome })] = ['max>=0'];
      for (const check of Object.values(CHECKS)) lens[selector('checks', { ...tags, check })] = ['rate>=0'];
    }
  }
  // A lens must not sit on a key that carries a real threshold: k6 would keep only one of the two lists.
  for (const key of Object.keys(sloThresholds(gateways))) delete lens[key];
  return lens;
}

// ---------------------------------------------------------------------------------------------------------
// Digests

export interface LatencyDigest {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export interface SloDigest {
  readonly successRate: { readonly expected: string; readonly actual: number | null; readonly ok: boolean };
  readonly p99: { readonly expected: string; readonly actual: number | null; readonly ok: boolean };
  readonly ok: boolean;
}

export interface PageDigest {
  /** Requests that went out. */
  readonly sent: number;
  /** Requests with an outcome: a response, a timeout or a connection error. */
  readonly pages: number;
  /** Requests per second that went out. */
  readonly achievedRps: number;
  /** (ok + degraded) / pages; null without pages. */
  readonly successRate: number | null;
  readonly degradedRate: number | null;
  /** Milliseconds from the actual send to the end of the response; null without pages. */
  readonly latencyMs: LatencyDigest | null;
  /** Pages by class: ok, degraded, 4xx, 5xx:503, timeout, connection; `other` for any class not listed. */
  readonly classes: Readonly<Record<string, number>>;
  readonly slo: SloDigest;
}

export interface GatewayDigest extends PageDigest {
  /** Arrivals k6 could not start because every VU was busy: the asked rate was not offered. */
  readonly dropped: number;
  readonly checks: Readonly<Record<string, { readonly passes: number; readonly fails: number }>>;
}

export interface VideoPageDigest {
  readonly script: 'video-page';
  readonly ratePerGateway: number;
  readonly durationMs: number;
  readonly slo: { readonly successRate: number; readonly p99Ms: number };
  readonly gateways: Readonly<Record<string, GatewayDigest>>;
  /** Every gateway met the SLO (k6's thresholds passed). */
  readonly sloHeld: boolean;
}

function values(data: K6SummaryData, key: string): Readonly<Record<string, number>> | undefined {
  return data.metrics[key]?.values;
}

function pageDigest(
  data: K6SummaryData,
  tags: Readonly<Record<string, string>>,
  seconds: number,
  sloFromK6: boolean,
): PageDigest {
  const sent = values(data, selector(METRICS.sent, tags))?.count ?? 0;
  const duration = values(data, selector(METRICS.duration, tags));
  const pages = duration?.count ?? 0;
  const classes: Record<string, number> = {};
  let listed = 0;
  for (const outcome of SUMMARY_CLASSES) {
    const count = values(data, selector(METRICS.duration, { ...tags, class: outcome }))?.count ?? 0;
    if (count > 0) classes[outcome] = count;
    listed += count;
  }
  if (pages > listed) classes.other = pages - listed;
  const served = (classes.ok ?? 0) + (classes.degraded ?? 0);
  const latencyMs =
    duration && pages > 0
      ? {
          p50: round(duration.med ?? 0),
          p95: round(duration['p(95)'] ?? 0),
          p99: round(duration['p(99)'] ?? 0),
          max: round(duration.max ?? 0),
        }
      : null;
  const successRate = pages > 0 ? served / pages : null;
  return {
    sent,
    pages,
    achievedRps: seconds > 0 ? round(sent / seconds) : 0,
    successRate,
    degradedRate: pages > 0 ? (classes.degraded ?? 0) / pages : null,
    latencyMs,
    classes,
    slo: sloOf(data, tags, successRate, latencyMs?.p99 ?? null, sloFromK6),
  };
}

/**
 * Whether the pages met the SLO. For the gateway-wide figures k6's own threshold results are the judge (what
 * decided the exit code); where k6 judged nothing (a ramp step, or `--no-thresholds`), the same rule is
 * applied here.
 */
function sloOf(
  data: K6SummaryData,
  tags: Readonly<Record<string, string>>,
  successRate: number | null,
  p99: number | null,
  fromK6: boolean,
): SloDigest {
  const judged = (key: string, threshold: string): boolean | undefined =>
    fromK6 ? data.metrics[key]?.thresholds?.[threshold]?.ok : undefined;
  const successOk =
    judged(selector(METRICS.success, tags), SUCCESS_THRESHOLD) ??
    (successRate !== null && successRate >= SLO.successRate);
  const p99Ok = judged(selector(METRICS.duration, tags), P99_THRESHOLD) ?? (p99 !== null && p99 < SLO.p99Ms);
  return {
    successRate: { expected: `>= ${SLO.successRate}`, actual: successRate, ok: successOk },
    p99: { expected: `< ${SLO.p99Ms}ms`, actual: p99, ok: p99Ok },
    ok: successOk && p99Ok,
  };
}

export function videoPageDigest(
  data: K6SummaryData,
  gateways: readonly Gateway[],
  ratePerGateway: number,
): VideoPageDigest {
  const seconds = data.state.testRunDurationMs / 1_000;
  const digests: Record<string, GatewayDigest> = {};
  for (const g of gateways) {
    const tags = { gateway: g.name };
    const checks: Record<string, { passes: number; fails: number }> = {};
    for (const check of Object.values(CHECKS)) {
      const v = values(data, selector('checks', { ...tags, check }));
      checks[check] = { passes: v?.passes ?? 0, fails: v?.fails ?? 0 };
    }
    digests[g.name] = {
      ...pageDigest(data, tags, seconds, true),
      dropped: values(data, selector('dropped_iterations', { scenario: g.name }))?.count ?? 0,
      checks,
    };
  }
  return {
    script: 'video-page',
    ratePerGateway,
    durationMs: Math.round(data.state.testRunDurationMs),
    slo: { ...SLO },
    gateways: digests,
    sloHeld: Object.values(digests).every((d) => d.slo.ok),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The ramp

export interface RampStep {
  /** The arrival rate of the step. */
  readonly rate: number;
}

export interface RampStepDigest extends PageDigest {
  readonly rate: number;
}

export interface RampGatewayDigest {
  readonly steps: readonly RampStepDigest[];
  readonly dropped: number;
  /** The highest rate of the steps up to the first that broke the SLO; null when the first step broke it. */
  readonly heldUpToRps: number | null;
  /** The rate of the first step that broke the SLO; null when none did (the knee is further up). */
  readonly brokeAtRps: number | null;
}

export interface RampDigest {
  readonly script: 'video-page-ramp';
  readonly stepMs: number;
  readonly rates: readonly number[];
  readonly slo: { readonly successRate: number; readonly p99Ms: number };
  readonly gateways: Readonly<Record<string, RampGatewayDigest>>;
}

/** The tag that says which step of the ramp a request belongs to. */
export const STEP_TAG = 'step_rps';

export function rampDigest(
  data: K6SummaryData,
  gateways: readonly Gateway[],
  rates: readonly number[],
  stepMs: number,
): RampDigest {
  const digests: Record<string, RampGatewayDigest> = {};
  for (const g of gateways) {
    const steps = rates.map((rate) => ({
      rate,
      ...pageDigest(data, { gateway: g.name, [STEP_TAG]: String(rate) }, stepMs / 1_000, false),
    }));
    const broke = steps.findIndex((s) => !s.slo.ok);
    digests[g.name] = {
      steps,
      dropped: values(data, selector('dropped_iterations', { scenario: g.name }))?.count ?? 0,
      heldUpToRps: broke === 0 ? null : (steps[broke === -1 ? steps.length - 1 : broke - 1]?.rate ?? null),
      brokeAtRps: broke === -1 ? null : (steps[broke]?.rate ?? null),
    };
  }
  return { script: 'video-page-ramp', stepMs, rates, slo: { ...SLO }, gateways: digests };
}

// ---------------------------------------------------------------------------------------------------------
// Text

export function videoPageText(digest: VideoPageDigest, timeoutMs: number, jsonFile: string): string {
  const rows = [
    ['GATEWAY', 'SENT', 'RPS', 'SUCCESS', 'DEGRADED', 'P50', 'P95', 'P99', 'MAX', 'ERRORS', 'SLO'],
  ];
  for (const [name, d] of Object.entries(digest.gateways)) {
    rows.push([
      name,
      String(d.sent),
      d.achievedRps.toFixed(1),
      share(d.successRate),
      share(d.degradedRate),
      ms(d.latencyMs?.p50),
      ms(d.latencyMs?.p95),
      ms(d.latencyMs?.p99),
      ms(d.latencyMs?.max),
      errorsText(d.classes),
      d.slo.ok ? '✓' : `✗ ${sloMisses(d.slo)}`,
    ]);
  }
  const checks = Object.entries(digest.gateways).map(
    ([name, d]) =>
      `${name}: ${Object.entries(d.checks)
        .map(([check, c]) => `${check} ${c.passes}/${c.passes + c.fails}`)
        .join(', ')}`,
  );
  const dropped = Object.entries(digest.gateways).filter(([, d]) => d.dropped > 0);
  return [
    '',
    `video page · ${digest.ratePerGateway} rps to each gateway for ${seconds(digest.durationMs)} · timeout ${ms(timeoutMs)}`,
    `SLO per gateway: success ${sloText()}; latency from the actual send`,
    '',
    ...table(rows).map((line) => `  ${line}`),
    '',
    `checks  ${checks.join(' · ')}`,
    ...(dropped.length > 0
      ? [
          `dropped ${dropped.map(([name, d]) => `${name} ${d.dropped}`).join(', ')} arrivals found no free VU: ` +
            'the asked rate was not offered (raise VUS)',
        ]
      : []),
    digest.sloHeld ? 'SLO held by every gateway' : 'SLO broken: k6 exits 99',
    `summary JSON: ${jsonFile}`,
    '',
  ].join('\n');
}

export function rampText(digest: RampDigest, timeoutMs: number, jsonFile: string): string {
  const lines = [
    '',
    `video page ramp · steps of ${seconds(digest.stepMs)} at ${digest.rates.join(', ')} rps · timeout ${ms(timeoutMs)}`,
    `SLO per step: success ${sloText()}; latency from the actual send`,
  ];
  for (const [name, g] of Object.entries(digest.gateways)) {
    const rows = [['STEP RPS', 'SENT', 'RPS', 'SUCCESS', 'P50', 'P99', 'ERRORS', 'SLO']];
    for (const s of g.steps) {
      rows.push([
        String(s.rate),
        String(s.sent),
        s.achievedRps.toFixed(1),
        share(s.successRate),
        ms(s.latencyMs?.p50),
        ms(s.latencyMs?.p99),
        errorsText(s.classes),
        s.slo.ok ? '✓' : `✗ ${sloMisses(s.slo)}`,
      ]);
    }
    lines.push('', name, ...table(rows).map((line) => `  ${line}`));
    lines.push(`  ${kneeText(g)}${g.dropped > 0 ? ` (${g.dropped} arrivals dropped: no free VU)` : ''}`);
  }
  lines.push('', `summary JSON: ${jsonFile}`, '');
  return lines.join('\n');
}

export function kneeText(g: RampGatewayDigest): string {
  if (g.brokeAtRps === null) {
    return `knee: not reached — the SLO held at every step, up to ${g.heldUpToRps} rps (raise STEPS or STEP_RPS)`;
  }
  if (g.heldUpToRps === null) return `knee: below ${g.brokeAtRps} rps — the SLO broke at the first step`;
  return `knee: between ${g.heldUpToRps} and ${g.brokeAtRps} rps — the SLO held at ${g.heldUpToRps} rps and broke at ${g.brokeAtRps} rps`;
}

function sloText(): string {
  return `>= ${SLO.successRate * 100}%, p99 < ${SLO.p99Ms}ms`;
}

function sloMisses(slo: SloDigest): string {
  const misses: string[] = [];
  if (!slo.successRate.ok) misses.push(`success ${share(slo.successRate.actual)}`);
  if (!slo.p99.ok) misses.push(`p99 ${ms(slo.p99.actual ?? undefined)}`);
  return misses.join(', ');
}

function errorsText(classes: Readonly<Record<string, number>>): string {
  const errors = Object.entries(classes).filter(([outcome]) => outcome !== 'ok' && outcome !== 'degraded');
  return errors.length === 0 ? '0' : errors.map(([outcome, n]) => `${outcome} ${n}`).join(', ');
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function share(value: number | null): string {
  return value === null ? '-' : `${Number((value * 100).toFixed(2))}%`;
}

function ms(value: number | undefined): string {
  if (value === undefined) return '-';
  return value < 1_000 ? `${Number(value.toFixed(1))}ms` : `${Number((value / 1_000).toFixed(2))}s`;
}

function seconds(msValue: number): string {
  return `${Number((msValue / 1_000).toFixed(1))}s`;
}

function round(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}
