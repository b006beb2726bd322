import { describe, expect, it } from 'vitest';
import {
  type ChartSeries,
  compactNumber,
  linearDomain,
  linearScale,
  linearTicks,
  lineChart,
  logDomain,
  logScale,
  logTicks,
  niceStep,
} from './svg-chart.ts';

describe('ticks and domains', () => {
  it.each([
    [42, 10],
    [1, 0.2],
    [1.07, 0.2],
    [13, 2.5],
    [600, 100],
  ])('picks a round step across %d', (span, step) => {
    expect(niceStep(span)).toBe(step);
  });

  it('places linear ticks on round values inside the domain', () => {
    expect(linearTicks(0, 42)).toEqual([0, 10, 20, 30, 40]);
    expect(linearTicks(-0.03, 1.04)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('places log ticks at 1-2-5 over a few decades and at powers of ten over many', () => {
    expect(logTicks(1, 1000)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
    expect(logTicks(0.1, 1e6)).toEqual([0.1, 1, 10, 100, 1000, 1e4, 1e5, 1e6]);
    expect(logTicks(0, 10)).toEqual([]);
  });

  it('gives a log axis room from the decade below the smallest value to a round step above the largest', () => {
    expect(logDomain([3.4, 424])).toEqual([1, 1000]);
    expect(logDomain([0.8, 14])).toEqual([0.1, 20]);
    // Nothing positive to place: a sensible default rather than NaN.
    expect(logDomain([0, -3])).toEqual([1, 1000]);
    expect(logDomain([])).toEqual([1, 1000]);
  });

  it('starts a linear axis at zero and ends it on a tick', () => {
    expect(linearDomain([3, 87])).toEqual([0, 100]);
    expect(linearDomain([])).toEqual([0, 1]);
    expect(linearDomain([0, 0])).toEqual([0, 1]);
  });

  it('maps values onto the range, a log scale by decades, and puts zero on its floor', () => {
    const lin = linearScale([0, 40], [100, 900]);
    expect(lin(20)).toBe(500);
    const log = logScale([1, 1000], [400, 100]);
    expect(log(10)).toBeCloseTo(300);
    expect(log(100)).toBeCloseTo(200);
    expect(log(0)).toBe(400);
    expect(log(0.01)).toBe(400);
  });

  it('writes tick values compactly', () => {
    expect(compactNumber(0)).toBe('0');
    expect(compactNumber(0.5)).toBe('0.5');
    expect(compactNumber(2500)).toBe('2500');
    expect(compactNumber(25_000)).toBe('25k');
  });
});

describe('lineChart', () => {
  const series = (id: string, points: ChartSeries['points']): ChartSeries => ({
    id,
    label: id,
    color: '#0072B2',
    points,
  });

  it('draws one path per series, found by its id', () => {
    const svg = lineChart({
      id: 'c',
      title: 'two lines',
      x: { title: 'seconds', min: 0, max: 10 },
      y: { title: 'ms' },
      series: [
        series('a', [
          { x: 0, y: 1 },
          { x: 5, y: 2 },
        ]),
        series('b', [
          { x: 0, y: 3 },
          { x: 5, y: 4 },
        ]),
      ],
    }).text;
    expect(svg.match(/<svg /g)).toHaveLength(1);
    expect(svg).toMatch(/data-series="a"><path d="M[^"]+L[^"]+"/);
    expect(svg).toMatch(/data-series="b"><path d="M[^"]+L[^"]+"/);
  });

  it('places points where the scales say', () => {
    const svg = lineChart({
      id: 'c',
      title: 'one line',
      width: 1000,
      height: 500,
      x: { title: 's', min: 0, max: 10 },
      y: { title: 'ms', scale: 'log', min: 1, max: 100 },
      series: [
        series('a', [
          { x: 0, y: 1 },
          { x: 10, y: 100 },
        ]),
      ],
    }).text;
    // Plot box: left 96, right 1000-28, top 128, bottom 500-70.
    expect(svg).toContain('d="M96 430L972 128"');
  });

  it('breaks the line where a value is missing and marks a lone value with a dot', () => {
    const svg = lineChart({
      id: 'c',
      title: 'gaps',
      x: { title: 's', min: 0, max: 10 },
      y: { title: 'ms' },
      series: [
        series('a', [
          { x: 0, y: 1 },
          { x: 1, y: 2 },
          { x: 2, y: null },
          { x: 3, y: 2 },
          { x: 4, y: null },
          { x: 5, y: 1 },
          { x: 6, y: 1 },
        ]),
      ],
    }).text;
    const d = /data-series="a"><path d="([^"]*)"/.exec(svg)?.[1] ?? '';
    expect(d.match(/M/g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(1);
  });

  it('shades bands, the strong ones hatched, with their labels', () => {
    const svg = lineChart({
      id: 'c',
      title: 'bands',
      x: { title: 's', min: 0, max: 40 },
      y: { title: 'ms' },
      series: [series('a', [{ x: 1, y: 1 }])],
      bands: [
        { from: 0, to: 10, label: 'baseline' },
        { from: 10, to: 30, label: 'fault', detail: 'latency on coin', tone: 'strong' },
      ],
    }).text;
    expect(svg).toContain('<g class="band" data-band="baseline"><title>baseline</title>');
    expect(svg).toContain(
      '<g class="band band-strong" data-band="fault"><title>fault: latency on coin</title>',
    );
    expect(svg).toContain('url(#c-hatch)');
    expect(svg).toContain('>latency on coin</text>');
  });

  it('shortens a band label that does not fit its band rather than spilling over', () => {
    const svg = lineChart({
      id: 'c',
      title: 'narrow',
      x: { title: 's', min: 0, max: 100 },
      y: { title: 'ms' },
      series: [],
      bands: [
        { from: 0, to: 8, label: 'a-very-long-phase-name' },
        { from: 8, to: 9, label: 'tiny' },
      ],
    }).text;
    expect(svg).not.toContain('>a-very-long-phase-name</text>');
    expect(svg).toContain('>a-very-lon…</text>');
    expect(svg).toContain('<title>a-very-long-phase-name</title>');
    expect(svg).not.toContain('>tiny</text>');
  });

  it('escapes every label it is given', () => {
    const svg = lineChart({
      id: 'c',
      title: '<script>t</script>',
      x: { title: '<x>', min: 0, max: 10 },
      y: { title: 'y&"' },
      series: [{ ...series('<s>', [{ x: 1, y: 1 }]), label: '<l>' }],
      bands: [{ from: 0, to: 10, label: '<b>' }],
    }).text;
    expect(svg).not.toMatch(/<(script|x|s|l|b)>/);
    expect(svg).toContain('&lt;script&gt;t&lt;/script&gt;');
    expect(svg).toContain('y&amp;&quot;');
  });

  it('says so when there is nothing to draw, and still draws the axes', () => {
    const svg = lineChart({
      id: 'c',
      title: 'empty',
      x: { title: 's', min: 0, max: 10 },
      y: { title: 'ms', scale: 'log' },
      series: [series('a', [])],
    }).text;
    expect(svg).toContain('no measurements');
    expect(svg).toContain('class="x-axis"');
  });

  it('lists every series in the hover details of each x', () => {
    const svg = lineChart({
      id: 'c',
      title: 'hover',
      x: { title: 's', min: 0, max: 10, hoverFormat: (v) => `at ${v}` },
      y: { title: 'ms', format: (v) => `${v} ms` },
      series: [series('a', [{ x: 2, y: 5 }]), series('b', [{ x: 2, y: 7 }])],
    }).text;
    expect(svg).toContain('<title>at 2\na: 5 ms\nb: 7 ms</title>');
  });
});
