import { describe, expect, it } from 'vitest';
import type { GatewaySecond } from '../runner/result.ts';
import type { LiveSnapshot } from './model.ts';
import { renderPage, renderView, secondsLeft } from './page.ts';

const AT = Date.UTC(2026, 10, 24, 10, 0, 30);

function figures(p99: number, degradedRate = 0): GatewaySecond {
  return { rps: 30, successRate: 0.995, degradedRate, p50: p99 / 4, p95: p99 / 2, p99, errors: 0 };
}

function snapshot(overrides: Partial<LiveSnapshot> = {}): LiveSnapshot {
  return {
    feed: 'run',
    title: 'weak-dependency-latency',
    subtitle: '30 rps to each gateway',
    gateways: ['naive', 'resilient'],
    latencyNote: 'latency from the intended send time',
    x: { title: 'seconds since load started', now: 20, plannedEnd: 43, historySeconds: 600 },
    seconds: Array.from({ length: 20 }, (_, t) => ({
      t,
      gateways: {
        naive: figures(t >= 13 ? 410 : 12),
        resilient: figures(t >= 13 ? 98 : 11, t >= 13 ? 1 : 0),
      },
    })),
    totals: { naive: 600, resilient: 600 },
    bands: [
      { key: 'warm-up', from: 0, to: 3, label: 'warm-up', tone: 'plain' },
      { key: 'phase:baseline', from: 3, to: 13, label: 'baseline', tone: 'plain' },
      { key: 'phase:fault', from: 13.2, to: null, label: 'fault', detail: 'latency on coin', tone: 'strong' },
    ],
    stage: {
      label: 'fault',
      step: 'phase 2 of 3',
      faults: ['latency on coin (delay 400ms)'],
      endsAt: AT + 12_400,
      tone: 'fault',
    },
    faults: [
      {
        key: 'f1',
        description: 'latency on coin (delay 400ms)',
        instances: ['coin-1', 'coin-2'],
        expiresAt: null,
      },
    ],
    outcome: null,
    notes: [],
    version: 42,
    at: AT,
    ...overrides,
  };
}

describe('the live page', () => {
  it("draws the report's charts: a line per gateway and measure, the fault window shaded up to now", () => {
    const view = renderView(snapshot());
    for (const series of ['naive p99', 'naive p50', 'resilient p99', 'resilient p50']) {
      const path = new RegExp(`data-series="${series}"><path d="(M[^"]+)"`).exec(view.regions.latency)?.[1];
      expect(path?.match(/[ML]/g)).toHaveLength(20);
    }
    expect(view.regions.rates).toContain('data-series="resilient degraded"');
    // The open fault band is drawn (hatched, as in the report) from where it began to now.
    expect(view.regions.latency).toMatch(
      /<g class="band band-strong" data-band="fault"><title>fault: latency on coin<\/title>/,
    );
    expect(view.regions.rates).toContain('data-band="warm-up"');
  });

  it('shows per gateway the last second and the requests so far, large, with units apart', () => {
    const view = renderView(snapshot());
    expect(view.regions.cards).toContain(
      '<tr data-gateway="resilient"><th scope="row"><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill="#009E73"/></svg>resilient</th>' +
        '<td data-metric="rps">30.0<small>rps</small></td><td data-metric="success">99.5%</td>' +
        '<td data-metric="degraded">100%</td><td data-metric="p50">25<small>ms</small></td>' +
        '<td data-metric="p99">98<small>ms</small></td><td data-metric="requests">600</td></tr>',
    );
  });

  it('shows the phase, what it injects, the time left, and the active faults', () => {
    const view = renderView(snapshot());
    expect(view.regions.stage).toContain('data-stage="fault"');
    expect(view.regions.stage).toContain(`data-ends-at="${AT + 12_400}">13 s left</span>`);
    expect(view.regions.stage).toContain('latency on coin (delay 400ms)');
    expect(view.regions.side).toContain('Active faults');
    expect(view.regions.side).toContain('coin-1, coin-2');
    expect(secondsLeft(AT - 1, AT)).toBe('0 s left');
  });

  it('shows the verdict and the claims at the end, and where the report is', () => {
    const view = renderView(
      snapshot({
        outcome: {
          status: 'completed',
          verdict: 'violated',
          reason: '1 of 2 claims did not hold',
          claims: [
            { text: '✓ resilient p99 < 350ms in fault: 98ms', holds: true },
            { text: '✗ naive p50 >= 500ms in fault: 410ms', holds: false },
          ],
          report: 'results/x/report.html',
        },
      }),
    );
    expect(view.regions.side).toContain('data-verdict="violated"');
    expect(view.regions.side).toContain('Claims violated');
    expect(view.regions.side).toContain('<li class="violated">✗ naive p50 &gt;= 500ms in fault: 410ms</li>');
    expect(view.regions.side).toContain('results/x/report.html');
  });

  it('says, on a lab page, that its latencies are bucket estimates, and keeps a minute of axis', () => {
    const view = renderView(
      snapshot({
        feed: 'lab',
        latencyNote: "p50 and p99 estimated from its histogram's buckets",
        x: { title: 'seconds since the lab started', now: 5, plannedEnd: null, historySeconds: 600 },
      }),
    );
    expect(view.regions.foot).toContain('estimated from its histogram&#39;s buckets');
    expect(view.regions.latency).toContain('>60</text>');
  });

  it('escapes what comes from experiment files', () => {
    const page = renderPage(renderView(snapshot({ title: '<script>alert(1)</script>' })));
    expect(page).not.toContain('<script>alert(1)');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});
