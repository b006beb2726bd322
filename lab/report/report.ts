/**
 * The run's report: one HTML file with everything inline (styles, charts as SVG, no script), so it opens
 * from a USB stick on a projector with no network, prints, and still shows a run that was cut short.
 * Every value taken from the result is escaped by `html` (names and descriptions come from user files);
 * a Content-Security-Policy forbids any fetch or script as a second guard. Maps in the result are read
 * defensively (`?? {}`): a result.json written by an interrupted or older run may lack some of them.
 */
import { GATEWAY_COLORS } from '../../services/names.ts';
import { BACKENDS, STRATEGIES } from '../../services/topology.ts';
import type {
  CalibrationEntry,
  ClaimResult,
  GatewayPhaseStats,
  GatewaySecond,
  PhaseFault,
  PhaseResult,
  RunResult,
  ServiceCounters,
  TimeseriesPoint,
  VariantRun,
} from '../runner/result.ts';
import {
  elapsedBetween,
  formatCount,
  formatDateTime,
  formatElapsed,
  formatExpected,
  formatMetric,
  formatMs,
  formatParam,
  formatParams,
  formatParamValue,
  formatRps,
  formatShare,
  formatTime,
  humanKey,
  NONE,
} from './format.ts';
import { type Fragment, html, type Markup, raw } from './html.ts';
import { type ChartBand, type ChartSeries, type LegendEntry, lineChart } from './svg-chart.ts';

/** Each strategy's own colour (services/names.ts), the same in every chart and table of every report. */
const STRATEGY_COLORS: Readonly<Record<string, string | undefined>> = GATEWAY_COLORS;
/** More Okabe–Ito colours, for gateways that are not one of the strategies. */
const OTHER_COLORS = ['#CC79A7', '#56B4E9', '#000000', '#E69F00'];

export function renderReport(result: RunResult): string {
  const gateways = gatewaysOf(result);
  const color = colorFor(gateways);
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="color-scheme" content="light">
<title>${result.experiment.name} — chaos-lab report</title>
<style>${raw(STYLES)}</style>
</head>
<body>
<main>
${header(result)}
${claimsSection(result.claims, color)}
${
  result.runs.length === 0
    ? html`<section><h2>Measurements</h2><p class="empty">No measurements: the run ended before any load was sent.</p></section>`
    : result.runs.map((run, i) => variantSection(run, i, result.runs.length, gateways, color))
}
${calibrationSection(result.calibration)}
<footer>chaos-lab · run ${result.runId} · times in UTC · generated from result.json</footer>
</main>
</body>
</html>
`;
  return page.text;
}

// ---------------------------------------------------------------------------------------------------------
// Header: what ran, and whether it showed what it set out to show

function header(result: RunResult): Markup {
  const elapsed = elapsedBetween(result.startedAt, result.finishedAt);
  return html`<header>
<p class="kicker">chaos-lab experiment report</p>
<h1>${result.experiment.name}</h1>
${result.experiment.description ? html`<p class="description">${result.experiment.description}</p>` : null}
${verdictBanner(result)}
${result.error ? html`<div class="alert bad" role="alert"><strong>The run ${result.status === 'aborted' ? 'was aborted' : 'failed'}:</strong> <span class="mono">${result.error}</span></div>` : null}
${result.generator.fellBehind ? html`<div class="alert warn"><strong>The load generator fell behind</strong>${result.generator.reason ? html`: ${result.generator.reason}` : null}. Its latencies would understate the truth, so no claim gets a verdict.</div>` : null}
${unsteadyWarmups(result)}
${leftovers(result)}
<dl class="facts">
<div><dt>Status</dt><dd><span class="badge status-${result.status}">${result.status}</span></dd></div>
<div><dt>Target</dt><dd>${result.target}</dd></div>
<div><dt>Load</dt><dd>${loadText(result.load)} <span class="muted">(${driverText(result)})</span></dd></div>
<div><dt>Started</dt><dd>${formatDateTime(result.startedAt)}</dd></div>
<div><dt>Finished</dt><dd>${formatDateTime(result.finishedAt)}${elapsed === null ? null : html` <span class="muted">(${formatElapsed(elapsed)})</span>`}</dd></div>
<div><dt>Run id</dt><dd class="mono">${result.runId}</dd></div>
<div><dt>Experiment file</dt><dd class="mono">${result.experiment.file}</dd></div>
</dl>
</header>`;
}

/**
 * Variants measured although the lab was not steady at the end of their longest warm-up (a run ended
 * during its warm-up measured nothing, and is said to be aborted or failed already).
 */
function unsteadyWarmups(result: RunResult): Markup | null {
  const unsteady = result.runs.filter((run) => run.warmup?.steady === false && run.phases.length > 0);
  if (unsteady.length === 0) return null;
  const named = result.runs.length > 1;
  return html`<div class="alert warn"><strong>The lab was not steady when measuring began</strong>: ${unsteady.map(
    (run, i) =>
      html`${i > 0 ? '; ' : ''}${named ? html`variant <q>${run.variant}</q> ` : ''}after ${formatElapsed(run.warmup.ms)} of warm-up${run.warmup.reason ? html` <span class="mono">(${run.warmup.reason})</span>` : null}`,
  )}. The first phase may show the lab warming up rather than the experiment.</div>`;
}

/** Which driver measured, and so from when its latencies run. */
function driverText(result: RunResult): string {
  return result.driver === 'k6'
    ? `measured by k6${result.k6Version ? ` ${result.k6Version}` : ''}: latency from the actual send`
    : 'measured by the built-in generator: latency from the intended send time';
}

function loadText(load: RunResult['load'] | undefined): string {
  if (load === undefined) return NONE;
  return `${formatCount(load.rate)} rps to each gateway, ${load.endpoint} page, timeout ${formatMs(load.timeoutMs)}`;
}

function verdictBanner(result: RunResult): Markup {
  const judged = result.claims.filter((c) => c.holds !== null);
  const violated = judged.filter((c) => c.holds === false).length;
  const total = result.claims.length;
  const [icon, title, summary] =
    result.verdict === 'held'
      ? ['✓', 'Claims held', total === 1 ? 'The claim held.' : `All ${total} claims held.`]
      : result.verdict === 'violated'
        ? [
            '✗',
            'Claims violated',
            `${violated} of ${total} ${total === 1 ? 'claim' : 'claims'} did not hold.`,
          ]
        : ['–', 'No verdict', 'The claims were not judged.'];
  return html`<div class="verdict verdict-${result.verdict}" role="status">
<span class="verdict-icon" aria-hidden="true">${icon}</span>
<div><div class="verdict-title">${title}</div><div class="verdict-reason">${result.verdictReason ?? summary}</div></div>
</div>`;
}

function leftovers(result: RunResult): Markup {
  const problems = result.rollbackProblems ?? [];
  const rollback =
    problems.length === 0
      ? null
      : html`<div class="alert bad"><strong>Parts of the rollback failed</strong> (leases still expire by themselves):<ul>${problems.map((p) => html`<li>${p}</li>`)}</ul></div>`;
  if (result.auditError !== undefined || result.leftoverFaults === null) {
    return html`${rollback}<div class="alert warn"><strong>Leftover faults unknown:</strong> the check after the run could not be done (${result.auditError ?? 'not audited'}). <span class="mono">chaos-lab fault list</span> shows what is active.</div>`;
  }
  if (result.leftoverFaults.length === 0) {
    return html`${rollback}<div class="alert good"><strong>✓ No fault left behind.</strong> After the run, the lab had no fault and no settings override active.</div>`;
  }
  const n = result.leftoverFaults.length;
  return html`${rollback}<div class="alert bad"><strong>✗ ${n} ${n === 1 ? 'fault was' : 'faults were'} still active after the run</strong> (leases expire by themselves; <span class="mono">chaos-lab fault clear</span> removes them now):
<ul>${result.leftoverFaults.map((f) => html`<li><span class="mono">${f.kind}</span> on <span class="mono">${f.instance}</span> by ${f.injector} <span class="muted mono">(${f.id})</span></li>`)}</ul></div>`;
}

// ---------------------------------------------------------------------------------------------------------
// Claims

function claimsSection(claims: readonly ClaimResult[], color: (g: string) => string): Markup {
  if (claims.length === 0) {
    return html`<section><h2>Claims</h2><p class="empty">The experiment makes no claims.</p></section>`;
  }
  const held = claims.filter((c) => c.holds === true).length;
  const violated = claims.filter((c) => c.holds === false).length;
  const open = claims.length - held - violated;
  const tally = [
    held > 0 ? `${held} held` : '',
    violated > 0 ? `${violated} violated` : '',
    open > 0 ? `${open} without verdict` : '',
  ].filter(Boolean);
  return html`<section>
<h2>Claims <span class="count">${tally.join(' · ')}</span></h2>
<table class="claims">
<thead><tr><th>Result</th><th>Variant</th><th>Phase</th><th>Subject</th><th>Metric</th><th class="num">Expected</th><th class="num">Actual</th></tr></thead>
<tbody>${claims.map((claim) => claimRow(claim, color))}</tbody>
</table>
</section>`;
}

function claimRow(claim: ClaimResult, color: (g: string) => string): Markup {
  const [cls, mark] =
    claim.holds === true
      ? ['held', '✓ held']
      : claim.holds === false
        ? ['violated', '✗ violated']
        : ['open', '– no verdict'];
  const subject =
    claim.gateway !== undefined
      ? html`${swatch(color(claim.gateway))}${claim.gateway} <span class="muted">gateway</span>`
      : claim.service !== undefined
        ? html`${claim.service} <span class="muted">service</span>`
        : NONE;
  return html`<tr class="claim-${cls}"><td class="claim-result">${mark}${claim.reason ? html`<div class="reason">${claim.reason}</div>` : null}</td><td>${claim.variant}</td><td>${claim.phase}</td><td>${subject}</td><td class="mono">${claim.metric}</td><td class="num">${formatExpected(claim.metric, claim.expected)}</td><td class="num strong">${formatMetric(claim.metric, claim.actual)}</td></tr>`;
}

// ---------------------------------------------------------------------------------------------------------
// One variant: charts over time, then the phase tables

function variantSection(
  run: VariantRun,
  index: number,
  count: number,
  gateways: readonly string[],
  color: (g: string) => string,
): Markup {
  const settings = Object.entries(run.settings ?? {}).filter(([, v]) => v !== undefined);
  // The trust mode is always said, the lab's when the variant does not set one.
  if (run.trust && run.settings?.trust === undefined) settings.push(['labTrust', run.trust]);
  const heading =
    count === 1 && run.variant === 'default' ? 'Measurements' : html`Variant <q>${run.variant}</q>`;
  const id = `v${index}`;
  return html`<section class="variant">
<h2>${heading}${settings.length > 0 ? html` <span class="count">${settings.map(([k, v]) => settingText(k, v)).join(' · ')}</span>` : null}</h2>
${phaseStrip(run.phases)}
${charts(run, id, gateways, color)}
<h3>Per phase and gateway</h3>
${phaseTable(run.phases, gateways, color)}
<h3>Services: restarts and recovered panics</h3>
${servicesTable(run.phases)}
${proxyRestartsTable(run.phases)}
${rogueTable(run.phases)}
<h3>Faults applied</h3>
${faultsTable(run.phases)}
</section>`;
}

/** The rogue client's calls per phase, when a phase had one: served, refused (by reason), no answer. */
function rogueTable(phases: readonly PhaseResult[]): Markup | null {
  const rows = phases.flatMap((p) => (p.rogue ? [{ phase: p.name, rogue: p.rogue }] : []));
  if (rows.length === 0) return null;
  const counts = (tally: Readonly<Record<string, number>>) =>
    Object.entries(tally)
      .map(([why, n]) => `${why} ${n}`)
      .join(', ') || '—';
  return html`<h3>Rogue calls straight to a backend</h3>
<table><thead><tr><th>phase</th><th>service</th><th>calls</th><th>served</th><th>refused</th><th>no answer</th></tr></thead>
<tbody>${rows.map(
    ({ phase, rogue }) =>
      html`<tr><td>${phase}</td><td>${rogue.service}</td><td>${rogue.calls}</td><td>${rogue.served}</td><td>${counts(rogue.refused)}</td><td>${counts(rogue.failed)}</td></tr>`,
  )}</tbody></table>`;
}

function settingText(key: string, value: unknown): string {
  if (key === 'workerRecovery') return `worker panic recovery ${value ? 'on' : 'off'}`;
  if (key === 'trust') return `trust ${String(value)}`;
  if (key === 'labTrust') return `trust ${String(value)} (the lab's)`;
  return `${key}: ${String(value)}`;
}

function phaseStrip(phases: readonly PhaseResult[]): Markup {
  if (phases.length === 0) return html`<p class="empty">No phase started.</p>`;
  return html`<ol class="phases">${phases.map(
    (p) =>
      html`<li class="${p.faults.length > 0 ? 'fault' : ''}"><strong>${p.name}</strong> <span class="muted">${phaseDuration(p)}</span>${p.faults.length > 0 ? html`<br><span class="phase-faults">${faultsSummary(p.faults)}</span>` : null}</li>`,
  )}</ol>`;
}

/** `20 s`, or `cut short: 8 s of 20 s` for the phase a run was stopped in. */
function phaseDuration(phase: PhaseResult): string {
  if (phase.partial)
    return `cut short: ${formatElapsed(phase.durationMs)} of ${formatElapsed(phase.plannedDurationMs)}`;
  return formatElapsed(phase.durationMs);
}

function faultsSummary(faults: readonly PhaseFault[]): string {
  return faults
    .map((f) => {
      const where = f.instances.length > 0 ? f.instances.join(', ') : f.service;
      const params = Object.entries(f.params).map(([k, v]) => formatParam(k, v));
      return `${f.kind} on ${where}${params.length > 0 ? ` (${params.join(', ')})` : ''}`;
    })
    .join('; ');
}

function charts(
  run: VariantRun,
  id: string,
  gateways: readonly string[],
  color: (g: string) => string,
): Markup {
  const warmup: ChartBand[] =
    run.warmupMs > 0
      ? [
          {
            from: 0,
            to: run.warmupMs / 1000,
            label: 'warm-up',
            tone: 'plain',
            ...(run.warmup?.steady === false ? { detail: 'the lab not steady' } : {}),
          },
        ]
      : [];
  const bands: ChartBand[] = [
    ...warmup,
    ...run.phases.map(
      (p): ChartBand => ({
        from: p.startMs / 1000,
        to: (p.startMs + p.durationMs) / 1000,
        label: p.partial ? `${p.name} (cut short)` : p.name,
        tone: p.faults.length > 0 ? 'strong' : 'plain',
        ...(p.faults.length > 0
          ? { detail: p.faults.map((f) => `${f.kind} on ${f.service}`).join(', ') }
          : {}),
      }),
    ),
  ];
  const lastPhaseEnd = Math.max(0, ...bands.map((b) => b.to));
  const lastSecond = Math.max(0, ...run.timeseries.map((s) => s.t + 1));
  const x = {
    title: 'seconds since load started',
    min: 0,
    max: Math.max(lastPhaseEnd, lastSecond, 1),
  };
  const { latency, rates } = gatewayCharts({
    id,
    label: run.variant,
    timeseries: run.timeseries,
    bands,
    x,
    gateways,
    color,
  });
  return html`<figure>
<figcaption>Latency over time</figcaption>
${latency}
</figure>
<figure>
<figcaption>Success and degraded pages over time</figcaption>
${rates}
</figure>`;
}

/** What the two charts over time need: the report's variant, or the live page's state (lab/live). */
export interface GatewayChartsInput {
  /** Unique within the page: prefixes each chart's internal ids. */
  readonly id: string;
  /** What the charts' accessible titles name: the variant. */
  readonly label: string;
  readonly timeseries: readonly TimeseriesPoint[];
  readonly bands: readonly ChartBand[];
  readonly x: { readonly title: string; readonly min: number; readonly max: number };
  readonly gateways: readonly string[];
  readonly color: (gateway: string) => string;
  /** Each chart's viewBox. @default lineChart's */
  readonly size?: { readonly width: number; readonly height: number };
}

/**
 * Latency (p99 and p50) and success/degraded rates per gateway over time, with the bands shaded. Shared
 * with the live page, so the room watches the very series the report will show.
 */
export function gatewayCharts(input: GatewayChartsInput): { latency: Markup; rates: Markup } {
  const { id, gateways, color, x, bands } = input;
  const size = input.size ?? {};
  // Each measurement covers one second [t, t+1): drawn at its middle, so a step lines up with its phase.
  const points = (gateway: string, pick: (s: GatewaySecond) => number | null) =>
    input.timeseries.map((s) => {
      const g = lookup<GatewaySecond>(s.gateways, gateway);
      return { x: s.t + 0.5, y: g === undefined ? null : pick(g) };
    });
  const hoverX = (v: number) => `${formatSecond(v - 0.5)}–${formatSecond(v + 0.5)} s`;

  // Where gateways measure the same (all at 100% success), the first is drawn widest and each next one
  // narrower on top of it, so every colour still shows as a stripe.
  const wide = (g: string) => 3 + 1.75 * (gateways.length - 1 - gateways.indexOf(g));
  const latencySeries: ChartSeries[] = gateways.flatMap((g) => [
    { id: `${g} p99`, label: `${g} p99`, color: color(g), width: wide(g), points: points(g, (s) => s.p99) },
    {
      id: `${g} p50`,
      label: `${g} p50`,
      color: color(g),
      width: 2,
      dash: '8 7',
      points: points(g, (s) => s.p50),
    },
  ]);
  const rateSeries: ChartSeries[] = gateways.flatMap((g) => [
    {
      id: `${g} success`,
      label: `${g} success`,
      color: color(g),
      width: wide(g),
      points: points(g, (s) => s.successRate),
    },
    {
      id: `${g} degraded`,
      label: `${g} degraded`,
      color: color(g),
      width: 2.5,
      dash: '3 7',
      points: points(g, (s) => s.degradedRate),
    },
  ]);
  const gatewayLegend: LegendEntry[] = gateways.map((g) => ({ label: g, color: color(g), width: 5 }));
  const grey = '#59616b';

  const latency = lineChart({
    ...size,
    id: `${id}-latency`,
    title: `Latency p99 and p50 per gateway over time, ${input.label}`,
    x: { ...x, hoverFormat: hoverX },
    y: { title: 'latency, ms (log scale)', scale: 'log', format: formatMsTick, hoverFormat: formatMs },
    series: latencySeries,
    bands,
    legend: [
      ...gatewayLegend,
      { label: 'p99', color: grey, width: 4 },
      { label: 'p50', color: grey, width: 2, dash: '8 7' },
    ],
  });
  const rates = lineChart({
    ...size,
    id: `${id}-rates`,
    title: `Success rate and degraded rate per gateway over time, ${input.label}`,
    x: { ...x, hoverFormat: hoverX },
    // A little beyond 0–100%, so lines at 0% and 100% are not drawn on the plot's edges.
    y: {
      title: 'share of requests, %',
      min: -0.03,
      max: 1.04,
      format: (v) => `${Math.round(v * 100)}%`,
      hoverFormat: formatShare,
    },
    series: rateSeries,
    bands,
    legend: [
      ...gatewayLegend,
      { label: 'success', color: grey, width: 4 },
      { label: 'degraded', color: grey, width: 2.5, dash: '3 7' },
    ],
  });
  return { latency, rates };
}

function formatSecond(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** Tick labels: `5 ms`, `200 ms`, `1 s` — short enough for the axis, exact at every 1-2-5 tick. */
function formatMsTick(value: number): string {
  if (value >= 1000) return `${Number((value / 1000).toPrecision(3))} s`;
  return `${Number(value.toPrecision(3))} ms`;
}

function phaseTable(
  phases: readonly PhaseResult[],
  gateways: readonly string[],
  color: (g: string) => string,
): Markup {
  if (phases.length === 0) return html`<p class="empty">No phase was measured.</p>`;
  const rows = phases.flatMap((phase) => {
    const names = gateways.filter((g) => lookup(phase.gateways, g) !== undefined);
    const shown = names.length > 0 ? names : [undefined];
    return shown.map((g, i) => {
      const phaseCell =
        i === 0
          ? html`<th scope="rowgroup" rowspan="${shown.length}" class="phase-cell">${phase.name}<br><span class="muted">${phaseDuration(phase)}</span>${phase.faults.length > 0 ? html`<br><span class="phase-faults">${faultsSummary(phase.faults)}</span>` : null}</th>`
          : null;
      const cls = `${phase.faults.length > 0 ? 'fault-row' : ''}${i === 0 ? ' group-start' : ''}`;
      if (g === undefined) {
        return html`<tr class="${cls}">${phaseCell}<td colspan="10" class="empty">no gateway measured</td></tr>`;
      }
      return html`<tr class="${cls}">${phaseCell}${gatewayCells(g, lookup<GatewayPhaseStats>(phase.gateways, g)!, color)}</tr>`;
    });
  });
  return html`<div class="table-wrap"><table class="phase-table">
<thead><tr><th>Phase</th><th>Gateway</th><th class="num">Requests</th><th class="num">Achieved</th><th class="num">Success</th><th class="num">Degraded</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th><th class="num">Max</th><th>Errors</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}

function gatewayCells(gateway: string, stats: GatewayPhaseStats, color: (g: string) => string): Markup {
  const latency = stats.latencyMs;
  return html`<td class="gateway">${swatch(color(gateway))}${gateway}${stats.fellBehind ? html` <span class="warn-mark" title="the load generator fell behind on this gateway">⚠ fell behind</span>` : null}</td>
<td class="num">${formatCount(stats.requests)}</td>
<td class="num">${formatRps(stats.achievedRps)}</td>
<td class="num">${formatShare(stats.successRate)}</td>
<td class="num">${formatShare(stats.degradedRate)}</td>
<td class="num">${formatMs(latency?.p50)}</td>
<td class="num">${formatMs(latency?.p95)}</td>
<td class="num strong">${formatMs(latency?.p99)}</td>
<td class="num">${formatMs(latency?.max)}</td>
<td>${errorsText(stats.errors)}</td>`;
}

function errorsText(errors: Readonly<Record<string, number>>): Fragment {
  const entries = Object.entries(errors ?? {})
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  if (entries.length === 0) return html`<span class="muted">none</span>`;
  return entries.map(
    ([cls, n], i) =>
      html`${i > 0 ? ' · ' : ''}<span class="error-count"><span class="mono">${cls}</span> ${formatCount(n)}</span>`,
  );
}

function servicesTable(phases: readonly PhaseResult[]): Markup {
  const services = ordered(
    phases.flatMap((p) => Object.keys(p.services ?? {})),
    BACKENDS,
  );
  if (phases.length === 0 || services.length === 0) {
    return html`<p class="empty">No service counters recorded.</p>`;
  }
  const cell = (n: number | undefined) =>
    html`<td class="num${n !== undefined && n > 0 ? ' hot' : ' zero'}">${formatCount(n)}</td>`;
  return html`<div class="table-wrap"><table class="services">
<thead>
<tr><th rowspan="2">Phase</th>${services.map((s) => html`<th colspan="2" class="group">${s}</th>`)}</tr>
<tr>${services.map(() => html`<th class="num sub">restarts</th><th class="num sub">panics</th>`)}</tr>
</thead>
<tbody>${phases.map(
    (p) =>
      html`<tr class="${p.faults.length > 0 ? 'fault-row' : ''}"><th scope="row">${p.name}</th>${services.map(
        (s) => {
          const counters = lookup<ServiceCounters>(p.services, s);
          return html`${cell(counters?.restarts)}${cell(counters?.panicsRecovered)}`;
        },
      )}</tr>`,
  )}</tbody>
</table></div>`;
}

/** The fault proxies that restarted, per phase, and what became of the run's faults on them; nothing when none did. */
function proxyRestartsTable(phases: readonly PhaseResult[]): Markup | null {
  const rows = phases.flatMap((p) => (p.proxyRestarts ?? []).map((restart) => ({ phase: p.name, restart })));
  if (rows.length === 0) return null;
  const faults = { none: 'none on it', reapplied: 'lost, put back', lost: 'lost' } as const;
  return html`<h3>Fault proxies restarted</h3>
<div class="table-wrap"><table class="proxy-restarts">
<thead><tr><th>Phase</th><th>In front of</th><th class="num">Restarts</th><th>The run's faults on it</th><th>What happened</th></tr></thead>
<tbody>${rows.map(
    ({ phase, restart }) =>
      html`<tr><td>${phase}</td><td class="mono">${restart.instance}</td><td class="num hot">${formatCount(restart.restarts)}</td><td class="strong">${faults[restart.faults]}</td><td>${restart.note}</td></tr>`,
  )}</tbody>
</table></div>`;
}

function faultsTable(phases: readonly PhaseResult[]): Markup {
  const rows = phases.flatMap((p) => p.faults.map((f) => ({ phase: p.name, fault: f })));
  if (rows.length === 0) return html`<p class="empty">No fault was injected in this run.</p>`;
  return html`<div class="table-wrap"><table class="faults">
<thead><tr><th>Phase</th><th>Kind</th><th>Service</th><th>Instances</th><th>Parameters</th><th>Injector</th><th>Injected</th><th>Removed</th></tr></thead>
<tbody>${rows.map(
    ({ phase, fault }) =>
      html`<tr><td>${phase}</td><td class="strong">${fault.kind}</td><td>${fault.service}</td><td class="mono">${fault.instances.length > 0 ? fault.instances.join(', ') : 'all'}</td><td>${formatParams(fault.params)}</td><td class="mono">${fault.injector}</td><td class="mono">${formatTime(fault.injectedAt)}</td><td class="mono">${fault.removedAt ? formatTime(fault.removedAt) : html`<span class="muted">not removed by the run</span>`}</td></tr>`,
  )}</tbody>
</table></div>`;
}

// ---------------------------------------------------------------------------------------------------------
// Calibration: the fault that happened next to the fault that was asked for

function calibrationSection(entries: readonly CalibrationEntry[]): Markup {
  const body =
    entries.length === 0
      ? html`<p class="empty">Nothing to calibrate: no latency, loss or HTTP-error fault ran to its end.</p>`
      : html`<div class="table-wrap"><table class="calibration">
<thead><tr><th>Variant</th><th>Phase</th><th>Fault</th><th>Measure</th><th class="num">Configured</th><th class="num">Observed</th><th class="num">Difference</th></tr></thead>
<tbody>${entries.map(calibrationRows)}</tbody>
</table></div>`;
  return html`<section>
<h2>Calibration</h2>
<p class="note">What the faulty instances actually did, measured where the fault was injected, next to what the experiment asked for.</p>
${body}
</section>`;
}

function calibrationRows(entry: CalibrationEntry): Markup {
  const keys = [...new Set([...Object.keys(entry.configured ?? {}), ...Object.keys(entry.observed ?? {})])];
  const rows = keys.length > 0 ? keys : [undefined];
  return html`${rows.map((key, i) => {
    const lead =
      i === 0
        ? html`<td rowspan="${rows.length}">${entry.variant}</td><td rowspan="${rows.length}">${entry.phase}</td><td rowspan="${rows.length}" class="strong">${entry.fault}${entry.note ? html`<div class="reason">${entry.note}</div>` : null}</td>`
        : null;
    if (key === undefined) {
      return html`<tr class="group-start">${lead}<td colspan="4" class="empty">not measured</td></tr>`;
    }
    const configured = lookup<number>(entry.configured, key);
    const observed = lookup<number>(entry.observed, key);
    return html`<tr class="${i === 0 ? 'group-start' : ''}">${lead}<td>${humanKey(key)}</td><td class="num">${configured === undefined ? NONE : formatParamValue(key, configured)}</td><td class="num strong">${observed === undefined ? html`<span class="muted">not measured</span>` : formatParamValue(key, observed)}</td><td class="num">${difference(key, configured, observed, i === 0)}</td></tr>`;
  })}`;
}

/**
 * Observed minus configured in the measure's unit. For the fault's main measure (the first configured
 * key: added latency, loss rate, error rate) a far-off value is flagged with its ratio, which is the case
 * that matters (the measured latency twice the configured one); secondary ones such as jitter are not,
 * since a configured range and a measured spread need not agree.
 */
function difference(
  key: string,
  configured: number | undefined,
  observed: number | undefined,
  main: boolean,
): Fragment {
  if (configured === undefined || observed === undefined) return NONE;
  const delta = observed - configured;
  const sign = delta > 0 ? '+' : delta < 0 ? '−' : '±';
  const magnitude = formatParamValue(key, Math.abs(delta));
  const ratio = configured !== 0 ? observed / configured : undefined;
  const far = main && ratio !== undefined && (ratio > 1.25 || ratio < 0.8);
  return far
    ? html`<span class="off">${sign}${magnitude} (×${Number(ratio.toPrecision(2))})</span>`
    : `${sign}${magnitude}`;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** A result's maps are keyed by known names; a result from a newer lab may carry others. */
function lookup<T>(record: object | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? (record as Record<string, T>)[key] : undefined;
}

function gatewaysOf(result: RunResult): string[] {
  const names = result.runs.flatMap((run) => [
    ...run.phases.flatMap((p) => Object.keys(p.gateways ?? {})),
    ...run.timeseries.flatMap((s) => Object.keys(s.gateways ?? {})),
  ]);
  return ordered(names, STRATEGIES);
}

/** Known names in their canonical order, then any others alphabetically. */
function ordered(names: readonly string[], canonical: readonly string[]): string[] {
  const unique = new Set(names);
  return [
    ...canonical.filter((n) => unique.has(n)),
    ...[...unique].filter((n) => !canonical.includes(n)).sort(),
  ];
}

export function colorFor(gateways: readonly string[]): (gateway: string) => string {
  const others = gateways.filter((g) => STRATEGY_COLORS[g] === undefined);
  return (gateway) =>
    STRATEGY_COLORS[gateway] ?? OTHER_COLORS[Math.max(0, others.indexOf(gateway)) % OTHER_COLORS.length]!;
}

function swatch(color: string): Markup {
  return html`<span class="swatch" style="background:${color}"></span>`;
}

const STYLES = `
:root { --fg: #16191d; --muted: #59616b; --line: #d5d9df; --soft: #f3f4f6; --good: #0b6b37; --bad: #b3261e; --warn: #8a5300; --fault: #fff3dc; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; font: 18px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 28px 40px 56px; }
h1 { font-size: 2.5rem; line-height: 1.15; margin: 0.1em 0 0.25em; overflow-wrap: anywhere; }
h2 { font-size: 1.7rem; margin: 1.6em 0 0.6em; padding-top: 0.5em; border-top: 3px solid var(--fg); }
h3 { font-size: 1.25rem; margin: 1.5em 0 0.5em; }
.kicker { margin: 0; text-transform: uppercase; letter-spacing: 0.08em; font-size: 0.85rem; font-weight: 700; color: var(--muted); }
.description { font-size: 1.25rem; margin: 0 0 1em; max-width: 60em; }
.muted { color: var(--muted); }
.mono { font-family: ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; overflow-wrap: anywhere; }
.strong { font-weight: 700; }
.count { font-size: 1.05rem; font-weight: 600; color: var(--muted); margin-left: 0.6em; }
.empty, .note { color: var(--muted); }
.verdict { display: flex; align-items: center; gap: 22px; padding: 18px 26px; border-radius: 12px; border: 4px solid; margin: 10px 0 16px; }
.verdict-icon { font-size: 3.4rem; font-weight: 800; line-height: 1; }
.verdict-title { font-size: 2.1rem; font-weight: 800; line-height: 1.1; }
.verdict-reason { font-size: 1.2rem; margin-top: 4px; }
.verdict-held { background: #e4f5ea; border-color: var(--good); color: #084d28; }
.verdict-violated { background: #fde8e6; border-color: var(--bad); color: #7d1912; }
.verdict-no-verdict { background: #eef0f3; border-color: #6b7280; color: #2b3038; }
.alert { padding: 12px 18px; border-radius: 8px; border-left: 8px solid; margin: 10px 0; }
.alert ul { margin: 6px 0 0; }
.alert.good { background: #e4f5ea; border-color: var(--good); color: #084d28; }
.alert.bad { background: #fde8e6; border-color: var(--bad); color: #6f1610; }
.alert.warn { background: #fff1d6; border-color: #b45f06; color: #5c3400; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px 28px; margin: 18px 0 0; }
.facts div { border-top: 1px solid var(--line); padding-top: 6px; }
.facts dt { font-size: 0.82rem; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); font-weight: 700; }
.facts dd { margin: 2px 0 0; }
.badge { display: inline-block; padding: 1px 12px; border-radius: 999px; font-weight: 700; color: #fff; }
.status-completed { background: var(--good); }
.status-aborted { background: #9a5a00; }
.status-failed { background: var(--bad); }
.phases { list-style: none; padding: 0; margin: 0 0 8px; display: flex; flex-wrap: wrap; gap: 10px; }
.phases li { padding: 6px 14px; border-radius: 8px; background: var(--soft); border: 1px solid var(--line); }
.phases li.fault { background: var(--fault); border-color: #d99a3d; }
.phase-faults { color: #7a3e00; font-size: 0.92rem; }
figure { margin: 22px 0 8px; break-inside: avoid; }
figcaption { font-size: 1.25rem; font-weight: 700; margin-bottom: 4px; }
svg.chart { display: block; width: 100%; height: auto; font-family: inherit; }
svg.chart .hover rect:hover { fill: rgba(22, 25, 29, 0.07); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 1rem; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--fg); font-size: 0.88rem; text-transform: uppercase; letter-spacing: 0.04em; vertical-align: bottom; }
thead th.sub { text-transform: none; letter-spacing: 0; font-weight: 600; color: var(--muted); }
thead th.group { text-align: center; border-bottom: 1px solid var(--line); }
th.num, td.num { text-align: right; white-space: nowrap; }
td.gateway { white-space: nowrap; font-weight: 600; }
tr.group-start > * { border-top: 2px solid #aab1bb; }
.phase-cell { font-weight: 700; min-width: 9em; }
.phase-cell .phase-faults, .phase-cell .muted { font-weight: 400; }
tr.fault-row > td, tr.fault-row > th { background: var(--fault); }
td.zero { color: #9aa1ab; }
td.hot { font-weight: 800; color: var(--bad); }
td.zero, td.hot { min-width: 4.5em; }
.error-count { white-space: nowrap; }
.off { font-weight: 800; color: var(--bad); }
.reason { font-weight: 400; font-size: 0.88rem; color: var(--muted); white-space: normal; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 3px; margin-right: 0.45em; vertical-align: -0.08em; }
.warn-mark { color: var(--warn); font-weight: 700; font-size: 0.9em; }
.claims td { font-size: 1.05rem; }
.claim-result { font-weight: 800; white-space: nowrap; }
tr.claim-held .claim-result { color: var(--good); }
tr.claim-violated > td { background: #fde8e6; }
tr.claim-violated .claim-result { color: var(--bad); }
tr.claim-open .claim-result { color: var(--muted); }
footer { margin-top: 48px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 0.9rem; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  section.variant { break-before: page; }
  tr, .verdict, .alert { break-inside: avoid; }
  .table-wrap { overflow: visible; }
}
`;
