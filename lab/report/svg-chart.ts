/**
 * Line charts as inline SVG, generated here rather than drawn by a script in the browser, so that a
 * report renders with JavaScript off, prints, and needs nothing from the network. Generic: series of
 * points, shaded bands along x, a linear or log y axis. Hover details use SVG `<title>` (the browser's
 * native tooltip), again without JavaScript.
 */
import { type Fragment, html, type Markup } from './html.ts';

export type ScaleKind = 'linear' | 'log';

export interface ChartPoint {
  readonly x: number;
  /** Null leaves a gap in the line (no measurement there). */
  readonly y: number | null;
}

export interface ChartSeries {
  /** Written to `data-series`, so tests and stylesheets can find the line. */
  readonly id: string;
  /** Used in the hover details. */
  readonly label: string;
  readonly color: string;
  /** @default 3 */
  readonly width?: number;
  /** An SVG `stroke-dasharray`; @default solid */
  readonly dash?: string;
  readonly points: readonly ChartPoint[];
}

export interface ChartBand {
  readonly from: number;
  readonly to: number;
  readonly label: string;
  /** A second, smaller line under the label. */
  readonly detail?: string;
  /** `strong` for the windows the chart is about (fault phases): hatched and tinted. @default plain */
  readonly tone?: 'plain' | 'strong';
}

export interface AxisOptions {
  readonly title: string;
  /** @default linear */
  readonly scale?: ScaleKind;
  /** @default from the data (log: the decade below the smallest positive value; linear: 0) */
  readonly min?: number;
  /** @default from the data, rounded up to a tick */
  readonly max?: number;
  /** Tick labels and hover values. @default a compact number */
  readonly format?: (value: number) => string;
  /** Values in the hover details. @default `format` */
  readonly hoverFormat?: (value: number) => string;
}

export interface LegendEntry {
  readonly label: string;
  readonly color: string;
  readonly width?: number;
  readonly dash?: string;
}

export interface LineChartOptions {
  /** Unique within the page: prefixes the SVG's internal ids. */
  readonly id: string;
  /** The accessible name of the chart. */
  readonly title: string;
  /** @default 1200 (a viewBox: the chart scales to its container) */
  readonly width?: number;
  /** @default 460 */
  readonly height?: number;
  readonly x: AxisOptions;
  readonly y: AxisOptions;
  readonly series: readonly ChartSeries[];
  readonly bands?: readonly ChartBand[];
  /** @default one entry per series */
  readonly legend?: readonly LegendEntry[];
}

// ---------------------------------------------------------------------------------------------------------
// Scales and ticks

export interface Scale {
  readonly kind: ScaleKind;
  readonly domain: readonly [number, number];
  readonly ticks: readonly number[];
  (value: number): number;
}

export function linearScale(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  const scale = (value: number) => r0 + ((value - d0) / span) * (r1 - r0);
  return Object.assign(scale, { kind: 'linear' as const, domain, ticks: linearTicks(d0, d1) });
}

/** Values at or below zero cannot be placed on a log axis: they sit on its floor. */
export function logScale(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const l0 = Math.log10(domain[0]);
  const l1 = Math.log10(domain[1]);
  const [r0, r1] = range;
  const span = l1 - l0 || 1;
  const scale = (value: number) => {
    const v = value > 0 ? Math.max(Math.log10(value), l0) : l0;
    return r0 + ((v - l0) / span) * (r1 - r0);
  };
  return Object.assign(scale, { kind: 'log' as const, domain, ticks: logTicks(domain[0], domain[1]) });
}

/** A round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks. */
export function niceStep(span: number, target = 6): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

export function linearTicks(min: number, max: number, target = 6): number[] {
  const step = niceStep(max - min, target);
  const ticks: number[] = [];
  const first = Math.ceil(min / step - 1e-9) * step;
  // Bounded: `niceStep` gives about `target` steps across the span.
  for (let i = 0; i <= target * 3; i++) {
    const tick = first + i * step;
    if (tick > max + step * 1e-9) break;
    ticks.push(roundTo(tick, step));
  }
  return ticks;
}

/** 1-2-5 in each decade while that stays readable (up to four decades), otherwise powers of ten. */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > min)) return [];
  const first = Math.floor(Math.log10(min));
  const last = Math.ceil(Math.log10(max));
  const multiples = last - first <= 4 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let exponent = first; exponent <= last && exponent - first <= 30; exponent++) {
    for (const m of multiples) {
      const tick = roundTo(m * 10 ** exponent, 10 ** Math.min(exponent, 0));
      if (tick >= min * (1 - 1e-9) && tick <= max * (1 + 1e-9)) ticks.push(tick);
    }
  }
  return ticks;
}

/**
 * From the decade at or below the smallest positive value to the 1-2-5 step above the largest with a
 * quarter to spare, so the top line does not run along the plot's edge.
 */
export function logDomain(values: readonly number[]): [number, number] {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return [1, 1000];
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive)));
  const hi = Math.max(stepAbove(Math.max(...positive) * 1.25), lo * 10);
  return [lo, hi];
}

/** From 0 (or below, for negative data) to the largest value rounded up to a tick. */
export function linearDomain(values: readonly number[]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return [0, 1];
  const lo = Math.min(0, ...finite);
  const hi = Math.max(...finite);
  if (hi <= lo) return [lo, lo + 1];
  const step = niceStep(hi - lo);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step - 1e-9) * step];
}

function stepAbove(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) {
    if (m * power >= value * (1 - 1e-9)) return m * power;
  }
  return 10 * power;
}

function roundTo(value: number, step: number): number {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(decimals, 12)));
}

/** A number in at most three significant digits without trailing zeros: 0.5, 20, 2.5k. */
export function compactNumber(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e4) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}

// ---------------------------------------------------------------------------------------------------------
// The chart

const FONT = 18;
const SMALL = 15;
const CHAR_WIDTH = 0.56; // of the font size: a fair average for the system sans-serif fonts
const MARGIN = { top: 128, right: 28, bottom: 70, left: 96 } as const;
/** Band labels sit in a strip above the plot, so they never cover a line. */
const BAND_STRIP = { top: 78, label: 100, detail: 120 } as const;

export function lineChart(options: LineChartOptions): Markup {
  const width = options.width ?? 1200;
  const height = options.height ?? 460;
  const plot = {
    left: MARGIN.left,
    right: width - MARGIN.right,
    top: MARGIN.top,
    bottom: height - MARGIN.bottom,
  };
  const ys = options.series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y])));
  const xs = options.series.flatMap((s) => s.points.map((p) => p.x));
  const bandXs = (options.bands ?? []).flatMap((b) => [b.from, b.to]);

  const xDomain = domainFor(options.x, [...xs, ...bandXs]);
  const yDomain = domainFor(options.y, ys);
  const x = makeScale(options.x.scale, xDomain, [plot.left, plot.right]);
  const y = makeScale(options.y.scale, yDomain, [plot.bottom, plot.top]);
  const xFormat = options.x.format ?? compactNumber;
  const yFormat = options.y.format ?? compactNumber;
  const clipId = `${options.id}-plot`;
  const hatchId = `${options.id}-hatch`;

  return html`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${options.id}-title" font-size="${FONT}">
<title id="${options.id}-title">${options.title}</title>
<defs>
<clipPath id="${clipId}"><rect x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top}"/></clipPath>
<pattern id="${hatchId}" width="12" height="12" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="12" height="12" fill="#fff3dc"/><line x1="0" y1="0" x2="0" y2="12" stroke="#f5d39c" stroke-width="4"/></pattern>
</defs>
<text class="axis-title" x="${plot.left - 80}" y="26" font-weight="600">${options.y.title}</text>
${legend(options.legend ?? options.series, plot.left, 60)}
${(options.bands ?? []).map((band) => bandMarkup(band, x, plot, hatchId))}
${yGrid(y, plot, yFormat)}
${xAxis(x, plot, xFormat, options.x.title, height)}
<g clip-path="url(#${clipId})" fill="none" stroke-linejoin="round" stroke-linecap="round">
${options.series.map((s) => seriesMarkup(s, x, y))}
</g>
${ys.length === 0 ? html`<text x="${(plot.left + plot.right) / 2}" y="${(plot.top + plot.bottom) / 2}" text-anchor="middle" fill="#555">no measurements</text>` : null}
${hoverColumns(options.series, x, plot, options.x.hoverFormat ?? xFormat, options.y.hoverFormat ?? yFormat)}
</svg>`;
}

function domainFor(axis: AxisOptions, values: readonly number[]): [number, number] {
  const auto = axis.scale === 'log' ? logDomain(values) : linearDomain(values);
  const lo = axis.min ?? auto[0];
  const hi = axis.max ?? auto[1];
  return hi > lo ? [lo, hi] : [lo, lo + (axis.scale === 'log' ? lo * 9 : 1)];
}

function makeScale(
  kind: ScaleKind | undefined,
  domain: readonly [number, number],
  range: readonly [number, number],
): Scale {
  return kind === 'log' ? logScale(domain, range) : linearScale(domain, range);
}

interface Box {
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

function legend(entries: readonly LegendEntry[], left: number, baseline: number): Markup {
  let cursor = left;
  const parts: Markup[] = [];
  for (const entry of entries) {
    parts.push(
      html`<g class="legend-entry"><line x1="${cursor}" y1="${baseline - 6}" x2="${cursor + 34}" y2="${baseline - 6}" stroke="${entry.color}" stroke-width="${entry.width ?? 3}"${dashAttr(entry.dash)} stroke-linecap="round"/><text x="${cursor + 42}" y="${baseline}">${entry.label}</text></g>`,
    );
    cursor += 42 + textWidth(entry.label, FONT) + 28;
  }
  return html`${parts}`;
}

function bandMarkup(band: ChartBand, x: Scale, plot: Box, hatchId: string): Markup {
  const from = clamp(x(band.from), plot.left, plot.right);
  const to = clamp(x(band.to), plot.left, plot.right);
  const bandWidth = to - from;
  if (bandWidth <= 0) return html``;
  const strong = band.tone === 'strong';
  const centre = from + bandWidth / 2;
  // A narrow band (a short warm-up) gets a smaller label before it gets a shortened one.
  const labelSize =
    [SMALL + 1, SMALL - 3, SMALL - 4].find((size) => textWidth(band.label, size) <= bandWidth - 6) ??
    SMALL - 3;
  const label = fitText(band.label, bandWidth - 6, labelSize);
  const detail = band.detail === undefined ? '' : fitText(band.detail, bandWidth - 6, SMALL - 1);
  const ink = strong ? '#7a3e00' : '#3d4450';
  // The full label on hover over the strip, for a band too narrow to show it.
  const full = band.detail === undefined ? band.label : `${band.label}: ${band.detail}`;
  return html`<g class="band${strong ? ' band-strong' : ''}" data-band="${band.label}"><title>${full}</title>
<rect x="${r(from)}" y="${BAND_STRIP.top}" width="${r(bandWidth)}" height="${plot.bottom - BAND_STRIP.top}" fill="${strong ? `url(#${hatchId})` : '#f1f2f4'}"/>
${strong ? html`<rect x="${r(from)}" y="${BAND_STRIP.top}" width="${r(bandWidth)}" height="5" fill="#b45f06"/>` : null}
<line x1="${r(from)}" y1="${BAND_STRIP.top}" x2="${r(from)}" y2="${plot.bottom}" stroke="#9aa1ab" stroke-width="1" stroke-dasharray="4 4"/>
${label ? html`<text x="${r(centre)}" y="${BAND_STRIP.label}" text-anchor="middle" font-size="${labelSize}" font-weight="700" fill="${ink}">${label}</text>` : null}
${detail ? html`<text x="${r(centre)}" y="${BAND_STRIP.detail}" text-anchor="middle" font-size="${SMALL - 1}" fill="${ink}">${detail}</text>` : null}
</g>`;
}

function yGrid(y: Scale, plot: Box, format: (v: number) => string): Markup {
  return html`<g class="y-axis">${y.ticks.map((tick) => {
    const py = r(y(tick));
    return html`<line x1="${plot.left}" y1="${py}" x2="${plot.right}" y2="${py}" stroke="#d5d9df" stroke-width="1"/><text x="${plot.left - 10}" y="${py + 6}" text-anchor="end" fill="#1f2328">${format(tick)}</text>`;
  })}<line x1="${plot.left}" y1="${plot.top}" x2="${plot.left}" y2="${plot.bottom}" stroke="#1f2328" stroke-width="1.5"/></g>`;
}

function xAxis(x: Scale, plot: Box, format: (v: number) => string, title: string, height: number): Markup {
  return html`<g class="x-axis"><line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}" stroke="#1f2328" stroke-width="1.5"/>${x.ticks.map(
    (tick) => {
      const px = r(x(tick));
      return html`<line x1="${px}" y1="${plot.bottom}" x2="${px}" y2="${plot.bottom + 7}" stroke="#1f2328" stroke-width="1.5"/><text x="${px}" y="${plot.bottom + 28}" text-anchor="middle" fill="#1f2328">${format(tick)}</text>`;
    },
  )}<text class="axis-title" x="${(plot.left + plot.right) / 2}" y="${height - 12}" text-anchor="middle" fill="#1f2328">${title}</text></g>`;
}

function seriesMarkup(series: ChartSeries, x: Scale, y: Scale): Markup {
  const width = series.width ?? 3;
  const runs = segments(series.points);
  const d = runs
    .filter((run) => run.length > 1)
    .map((run) => run.map((p, i) => `${i === 0 ? 'M' : 'L'}${r(x(p.x))} ${r(y(p.y))}`).join(''))
    .join('');
  // A lone measurement between gaps would draw nothing as a path.
  const dots = runs
    .filter((run) => run.length === 1)
    .map(
      ([p]) =>
        html`<circle cx="${r(x(p!.x))}" cy="${r(y(p!.y))}" r="${width}" fill="${series.color}" stroke="none"/>`,
    );
  return html`<g class="series" data-series="${series.id}"><path d="${d}" stroke="${series.color}" stroke-width="${width}"${dashAttr(series.dash)}/>${dots}</g>`;
}

interface Measured {
  readonly x: number;
  readonly y: number;
}

function segments(points: readonly ChartPoint[]): Measured[][] {
  const runs: Measured[][] = [];
  let current: Measured[] = [];
  for (const p of [...points].sort((a, b) => a.x - b.x)) {
    if (p.y === null || !Number.isFinite(p.y)) {
      if (current.length > 0) runs.push(current);
      current = [];
    } else {
      current.push({ x: p.x, y: p.y });
    }
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

/** One invisible column per x value whose native tooltip lists every series there. */
function hoverColumns(
  series: readonly ChartSeries[],
  x: Scale,
  plot: Box,
  xFormat: (v: number) => string,
  yFormat: (v: number) => string,
): Markup {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const columns: Markup[] = [];
  for (let i = 0; i < xs.length; i++) {
    const at = xs[i]!;
    const prev = xs[i - 1];
    const next = xs[i + 1];
    const left = prev === undefined ? plot.left : (x(prev) + x(at)) / 2;
    const right = next === undefined ? plot.right : (x(at) + x(next)) / 2;
    const lines = series.flatMap((s) => {
      const point = s.points.find((p) => p.x === at);
      return point && point.y !== null ? [`${s.label}: ${yFormat(point.y)}`] : [];
    });
    if (lines.length === 0) continue;
    columns.push(
      html`<rect x="${r(left)}" y="${plot.top}" width="${r(Math.max(0, right - left))}" height="${plot.bottom - plot.top}"><title>${[xFormat(at), ...lines].join('\n')}</title></rect>`,
    );
  }
  return html`<g class="hover" fill="transparent">${columns}</g>`;
}

function dashAttr(dash: string | undefined): Fragment {
  return dash === undefined ? null : html` stroke-dasharray="${dash}"`;
}

function textWidth(text: string, size: number): number {
  return text.length * size * CHAR_WIDTH;
}

/** The text if it fits the width, else shortened with an ellipsis, else nothing. */
function fitText(text: string, width: number, size: number): string {
  if (textWidth(text, size) <= width) return text;
  const chars = Math.floor(width / (size * CHAR_WIDTH)) - 1;
  return chars >= 3 ? `${text.slice(0, chars)}…` : '';
}

function clamp(value: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, value));
}

function r(value: number): number {
  return Math.round(value * 10) / 10;
}
