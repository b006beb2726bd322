/**
 * The live page: rendered on the server from a LiveSnapshot, as the report is (the same charts, drawn by
 * lab/report), and pushed to the browser as HTML fragments, one per region of the page. The browser's
 * script only swaps fragments in and ticks the countdown: there is no second chart library, and a page
 * with scripts off still shows the state it was loaded with.
 *
 * Made for a projector: large type, black on white, the gateways' colours of the report, and a layout
 * that fits 1280×720 with nothing to scroll. Everything inline; the Content-Security-Policy allows the
 * page's own script and style (by hash) and connections to its own origin, nothing else.
 */
import { createHash } from 'node:crypto';
import {
  formatCount,
  formatElapsed,
  formatMs,
  formatRps,
  formatShare,
  formatTime,
  NONE,
} from '../report/format.ts';
import { html, type Markup, raw } from '../report/html.ts';
import { colorFor, gatewayCharts } from '../report/report.ts';
import type { ChartBand } from '../report/svg-chart.ts';
import type { GatewaySecond } from '../runner/result.ts';
import type { LiveFault, LiveOutcome, LiveSnapshot, LiveStage } from './model.ts';

/** The regions the page is made of; each is replaced whole when it changes. */
export const REGIONS = ['head', 'stage', 'cards', 'side', 'latency', 'rates', 'foot'] as const;
export type Region = (typeof REGIONS)[number];

/** What the server pushes: every region's markup, and the clock to count down with. */
export interface LiveView {
  readonly version: number;
  readonly title: string;
  /** Epoch ms on the server when rendered: the browser counts down against it, not its own clock. */
  readonly serverNow: number;
  readonly regions: Readonly<Record<Region, string>>;
}

/**
 * Each chart's viewBox: about the shape of its half of a 1280×720 screen, so its text stays as large as
 * it can, and wide enough for the report's legends.
 */
const CHART_SIZE = { width: 840, height: 540 } as const;
/** A lab page's axis spans at least this much, so the first seconds do not fill the chart's width. */
const MIN_LAB_SPAN = 60;

export function renderView(snapshot: LiveSnapshot): LiveView {
  return {
    version: snapshot.version,
    title: `${snapshot.stage.label} · ${snapshot.title}`,
    serverNow: snapshot.at,
    regions: {
      head: headRegion(snapshot).text,
      stage: stageRegion(snapshot.stage, snapshot.at).text,
      cards: cardsRegion(snapshot).text,
      side: sideRegion(snapshot).text,
      ...chartRegions(snapshot),
      foot: footRegion(snapshot).text,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Regions

function headRegion(s: LiveSnapshot): Markup {
  return html`<h1>${s.title}</h1><p class="subtitle">${s.subtitle}</p>`;
}

function stageRegion(stage: LiveStage, now: number): Markup {
  const left =
    stage.endsAt === null
      ? null
      : html`<span id="time-left" class="left" data-ends-at="${stage.endsAt}">${secondsLeft(stage.endsAt, now)}</span>`;
  return html`<div class="stage tone-${stage.tone}" data-stage="${stage.label}">
<div class="stage-main"><span class="stage-label">${stage.label}</span>${left}</div>
${stage.faults.length > 0 ? html`<div class="stage-faults">${stage.faults.join(' · ')}</div>` : null}
${stage.step ? html`<div class="stage-step">${stage.step}</div>` : null}
</div>`;
}

export function secondsLeft(endsAt: number, now: number): string {
  return `${Math.max(0, Math.ceil((endsAt - now) / 1000))} s left`;
}

function cardsRegion(s: LiveSnapshot): Markup {
  if (s.gateways.length === 0) return html`<p class="quiet">waiting for the experiment…</p>`;
  const color = colorFor(s.gateways);
  return html`<table class="board">
<thead><tr><th>gateway <small>last second</small></th><th>rate</th><th>success</th><th>degraded</th><th>p50</th><th>p99</th><th>requests <small>so far</small></th></tr></thead>
<tbody>${s.gateways.map((gateway) => {
    const second = latestOf(s, gateway)?.second;
    return html`<tr data-gateway="${gateway}"><th scope="row">${swatch(color(gateway))}${gateway}</th>${metric('rps', formatRps(second?.rps))}${metric('success', formatShare(second?.successRate))}${metric('degraded', formatShare(second?.degradedRate))}${metric('p50', formatMs(second?.p50))}${metric('p99', formatMs(second?.p99))}${metric('requests', formatCount(s.totals[gateway] ?? 0))}</tr>`;
  })}</tbody>
</table>`;
}

/** The newest second that measured this gateway. */
function latestOf(s: LiveSnapshot, gateway: string): { t: number; second: GatewaySecond } | undefined {
  for (let i = s.seconds.length - 1; i >= 0; i--) {
    const point = s.seconds[i]!;
    const second = Object.hasOwn(point.gateways, gateway)
      ? (point.gateways as Record<string, GatewaySecond | undefined>)[gateway]
      : undefined;
    if (second) return { t: point.t, second };
  }
  return undefined;
}

/** A figure read from across the room: the number large, its unit small. */
function metric(name: string, formatted: string): Markup {
  const cut = formatted.lastIndexOf(' ');
  const [value, unit] = cut > 0 ? [formatted.slice(0, cut), formatted.slice(cut + 1)] : [formatted, ''];
  return html`<td data-metric="${name}">${value}${unit ? html`<small>${unit}</small>` : null}</td>`;
}

function sideRegion(s: LiveSnapshot): Markup {
  if (s.outcome) return outcomeMarkup(s.outcome);
  if (s.faults.length > 0) return faultsMarkup(s.faults, s.at);
  const note = s.notes.at(-1);
  return html`<p class="quiet">${s.feed === 'lab' ? 'No fault active.' : 'No fault injected right now.'}${note ? html` <span class="note">${note}</span>` : null}</p>`;
}

function faultsMarkup(faults: readonly LiveFault[], now: number): Markup {
  return html`<div class="faults"><span class="faults-title">Active faults</span><ul>${faults.map(
    (f) =>
      html`<li data-fault="${f.key}"><strong>${f.description}</strong> <span class="muted">${f.instances.join(', ')}${
        f.expiresAt === null ? null : ` · lease ends in ${formatElapsed(Math.max(0, f.expiresAt - now))}`
      }</span></li>`,
  )}</ul></div>`;
}

function outcomeMarkup(outcome: LiveOutcome): Markup {
  const judged = outcome.claims.filter((c) => c.holds !== null);
  const held = judged.filter((c) => c.holds).length;
  const [icon, title] =
    outcome.verdict === 'held'
      ? ['✓', 'Claims held']
      : outcome.verdict === 'violated'
        ? ['✗', 'Claims violated']
        : ['–', 'No verdict'];
  const summary =
    outcome.reason ??
    (outcome.claims.length === 0 ? 'no claims' : `${held} of ${outcome.claims.length} claims held`);
  return html`<div class="outcome verdict-${outcome.verdict}" data-verdict="${outcome.verdict}">
<div class="verdict-line"><span class="verdict-icon">${icon}</span><span class="verdict-title">${title}</span><span class="verdict-reason">${summary}</span></div>
${
  outcome.claims.length > 0
    ? html`<ul class="claims">${outcome.claims.map(
        (c) =>
          html`<li class="${c.holds === true ? 'held' : c.holds === false ? 'violated' : 'open'}">${c.text}</li>`,
      )}</ul>`
    : null
}
${outcome.report ? html`<p class="report">report: <span class="mono">${outcome.report}</span></p>` : null}
</div>`;
}

function chartRegions(s: LiveSnapshot): Pick<Record<Region, string>, 'latency' | 'rates'> {
  const now = s.x.now;
  const min = Math.max(0, now - s.x.historySeconds);
  const max =
    s.feed === 'lab'
      ? Math.max(now, min + MIN_LAB_SPAN)
      : Math.max(s.x.plannedEnd ?? 1, now, ...s.seconds.map((p) => p.t + 1));
  const bands: ChartBand[] = s.bands.map((b) => ({
    from: Math.max(b.from, min),
    to: b.to ?? Math.max(b.from, now),
    label: b.label,
    tone: b.tone,
    ...(b.detail !== undefined ? { detail: b.detail } : {}),
  }));
  const { latency, rates } = gatewayCharts({
    id: 'live',
    label: s.title,
    timeseries: s.seconds,
    bands,
    x: { title: s.x.title, min, max },
    gateways: s.gateways,
    color: colorFor(s.gateways),
    size: CHART_SIZE,
  });
  return {
    latency: html`<h3>Latency <small>p99 solid · p50 dashed</small></h3>${latency}`.text,
    rates: html`<h3>Success and degraded pages <small>success solid · degraded dotted</small></h3>${rates}`
      .text,
  };
}

function footRegion(s: LiveSnapshot): Markup {
  const where =
    s.feed === 'run' && s.x.now === 0 ? 'load not started' : `${Math.floor(s.x.now)} ${s.x.title}`;
  return html`<span>${s.latencyNote}</span> <span class="muted">· ${where} · updated ${formatTime(new Date(s.at).toISOString()).slice(0, 8)} UTC</span>`;
}

function swatch(color: string): Markup {
  return html`<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill="${color}"/></svg>`;
}

// ---------------------------------------------------------------------------------------------------------
// The page

const STYLE = `
:root { --fg: #111418; --muted: #4a525c; --line: #c9ced6; --soft: #f2f3f5; --good: #0b6b37; --bad: #b3261e; --fault: #fff3dc; --fault-ink: #7a3e00; }
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; color: var(--fg); background: #fff; font: 20px/1.25 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; font-variant-numeric: tabular-nums; }
main { height: 100vh; display: grid; grid-template-rows: auto auto auto minmax(0, 1fr) auto; gap: 8px; padding: 10px 18px 6px; }
.top { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 18px; align-items: stretch; }
#head h1 { font-size: 34px; line-height: 1.1; margin: 2px 0 2px; overflow-wrap: anywhere; }
#head .subtitle { margin: 0; color: var(--muted); font-size: 18px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.stage { height: 100%; min-width: 360px; max-width: 640px; border-radius: 10px; padding: 6px 16px; border: 3px solid #6b7280; background: var(--soft); display: flex; flex-direction: column; justify-content: center; }
.stage-main { display: flex; align-items: baseline; justify-content: space-between; gap: 24px; }
.stage-label { font-size: 34px; font-weight: 800; text-transform: uppercase; letter-spacing: 0.02em; }
.left { font-size: 30px; font-weight: 700; white-space: nowrap; }
.stage-faults { font-size: 20px; font-weight: 700; }
.stage-step { font-size: 16px; color: var(--muted); }
.tone-fault { background: var(--fault); border-color: #b45f06; color: var(--fault-ink); }
.tone-done { background: #e4f5ea; border-color: var(--good); color: #084d28; }
.tone-bad { background: #fde8e6; border-color: var(--bad); color: #7d1912; }
.tone-plain { background: #fff; border-color: var(--fg); }
.board { width: 100%; border-collapse: collapse; }
.board th, .board td { padding: 0 10px; text-align: right; white-space: nowrap; border-bottom: 1px solid var(--line); }
.board thead th { font-size: 14px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); font-weight: 700; border-bottom: 2px solid var(--fg); }
.board thead th small { text-transform: none; letter-spacing: 0; font-size: 13px; }
.board th:first-child { text-align: left; padding-left: 0; }
.board tbody th { font-size: 26px; font-weight: 800; }
.board tbody th .swatch { vertical-align: -2px; margin-right: 10px; }
.board td { font-size: 29px; font-weight: 800; line-height: 1.12; }
.swatch { width: 22px; height: 22px; }
small { font-size: 0.55em; font-weight: 600; color: var(--muted); margin-left: 2px; }
#side { min-height: 34px; font-size: 19px; }
#side p { margin: 4px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.quiet { color: var(--muted); }
.note { color: var(--fg); }
.faults { display: flex; gap: 14px; align-items: baseline; background: var(--fault); color: var(--fault-ink); border-left: 8px solid #b45f06; border-radius: 6px; padding: 4px 12px; }
.faults-title { font-weight: 800; text-transform: uppercase; font-size: 16px; letter-spacing: 0.05em; white-space: nowrap; }
.faults ul { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 24px; }
.faults .muted { color: #8a5a2b; }
.outcome { border-radius: 8px; border: 3px solid; padding: 4px 14px; }
.verdict-line { display: flex; align-items: baseline; gap: 14px; }
.verdict-icon, .verdict-title { font-weight: 800; font-size: 28px; white-space: nowrap; }
.verdict-reason { font-size: 17px; display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2; line-clamp: 2; overflow: hidden; }
.verdict-held { background: #e4f5ea; border-color: var(--good); color: #084d28; }
.verdict-violated { background: #fde8e6; border-color: var(--bad); color: #7d1912; }
.verdict-no-verdict { background: #eef0f3; border-color: #6b7280; color: #2b3038; }
.claims { margin: 2px 0; padding: 0; list-style: none; columns: 2; column-gap: 28px; font-size: 17px; }
.claims li.violated { font-weight: 800; }
.report { margin: 2px 0; font-size: 16px; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; min-height: 0; }
.chart-box { margin: 0; display: grid; grid-template-rows: auto minmax(0, 1fr); min-height: 0; }
.chart-box h3 { margin: 0; font-size: 20px; }
.chart-box h3 small { font-size: 15px; }
svg.chart { display: block; width: 100%; height: 100%; font-family: inherit; }
footer { display: flex; gap: 10px; font-size: 14px; color: var(--muted); align-items: baseline; }
#foot { flex: 1; }
.conn { font-weight: 700; white-space: nowrap; }
.conn.live { color: var(--good); }
.conn.lost { color: var(--bad); }
`;

/**
 * Swaps in the regions the server pushes (Server-Sent Events: the browser reconnects by itself, and the
 * server sends the whole state on every connection) and ticks the countdown between pushes.
 */
const SCRIPT = `
(() => {
  const conn = document.getElementById('conn');
  const shown = new Map();
  let offset = 0;
  const status = (state, text) => { conn.className = 'conn ' + state; conn.textContent = text; };
  const tick = () => {
    const el = document.getElementById('time-left');
    const ends = el ? Number(el.dataset.endsAt) : 0;
    if (!ends) return;
    const left = Math.max(0, Math.ceil((ends - (Date.now() + offset)) / 1000));
    el.textContent = left + ' s left';
  };
  const apply = (view) => {
    offset = view.serverNow - Date.now();
    document.title = view.title;
    for (const [id, markup] of Object.entries(view.regions)) {
      if (shown.get(id) === markup) continue;
      const el = document.getElementById(id);
      if (!el) continue;
      el.innerHTML = markup;
      shown.set(id, markup);
    }
    document.body.dataset.version = String(view.version);
    tick();
  };
  const source = new EventSource('/events');
  source.addEventListener('view', (event) => {
    apply(JSON.parse(event.data));
    status('live', '● live');
  });
  source.addEventListener('error', () => {
    status('lost', '○ connection lost: the run has ended or the lab has stopped (this is its last state); retrying');
  });
  setInterval(tick, 250);
})();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/**
 * Nothing from anywhere else: no fonts, images, scripts or frames; the page's own inline style and script
 * by hash; the event stream from its own origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The whole page, with the current state already in it (the first paint needs no round trip). */
export function renderPage(view: LiveView): string {
  const r = (region: Region) => raw(view.regions[region]);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${view.title}</title>
<style>${raw(STYLE)}</style>
</head>
<body data-version="${view.version}">
<main>
<div class="top"><div id="head">${r('head')}</div><div id="stage">${r('stage')}</div></div>
<section id="cards" aria-label="each gateway in the last second">${r('cards')}</section>
<section id="side" aria-live="polite">${r('side')}</section>
<div class="charts"><figure class="chart-box" id="latency">${r('latency')}</figure><figure class="chart-box" id="rates">${r('rates')}</figure></div>
<footer><span id="foot">${r('foot')}</span><span id="conn" class="conn">${NONE} connecting</span></footer>
</main>
<script>${raw(SCRIPT)}</script>
</body>
</html>
`.text;
}
