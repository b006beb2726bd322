import { describe, expect, it } from 'vitest';
import type { RunResult, VariantRun } from '../runner/result.ts';
import { abortedResult, sampleResult } from './__fixtures__/sample-result.ts';
import { renderReport } from './report.ts';

const GATEWAYS = ['naive', 'parallel', 'resilient'] as const;

/** The markup of each inline SVG chart in the page. */
function charts(page: string): string[] {
  return page.match(/<svg [\s\S]*?<\/svg>/g) ?? [];
}

describe('renderReport', () => {
  const page = renderReport(sampleResult);

  it('is one self-contained document that fetches nothing', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).not.toMatch(/\b(src|href|xlink:href|action|poster)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(page).not.toMatch(/url\(\s*["']?\s*(https?:)?\/\//i);
    expect(page).not.toMatch(/@import|@font-face/i);
    expect(page).not.toMatch(/<script\b[^>]*\bsrc/i);
    expect(page).not.toMatch(/<link\b/i);
    expect(page).not.toMatch(/<(img|iframe|object|embed|video|audio)\b/i);
    // A second guard in the browser: no fetch, no script, whatever the markup says.
    expect(page).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
  });

  it('draws two charts per variant, each with a line for every gateway', () => {
    const svgs = charts(page);
    expect(svgs).toHaveLength(2);
    const [latency, rates] = svgs as [string, string];
    for (const gateway of GATEWAYS) {
      expect(latency).toMatch(new RegExp(`data-series="${gateway} p99"><path d="M[^"]+L`));
      expect(latency).toMatch(new RegExp(`data-series="${gateway} p50"><path d="M[^"]+L`));
      expect(rates).toMatch(new RegExp(`data-series="${gateway} success"><path d="M[^"]+L`));
      expect(rates).toMatch(new RegExp(`data-series="${gateway} degraded"><path d="M[^"]+L`));
    }
    expect(latency).toContain('latency, ms (log scale)');
    expect(latency).toMatch(/>1 s</);
    expect(latency).toMatch(/>100 ms</);
    expect(rates).toMatch(/>100%</);
  });

  it('shades every phase, the fault phases strongly, on both charts', () => {
    for (const svg of charts(page)) {
      expect(svg).toContain('<g class="band" data-band="warm-up"><title>');
      expect(svg).toContain('<g class="band" data-band="baseline"><title>');
      expect(svg).toContain('<g class="band band-strong" data-band="fault"><title>');
      expect(svg).toContain('<g class="band" data-band="recovery"><title>');
      expect(svg).toContain('>latency on coin</text>');
    }
  });

  it('tells the verdict and that no fault was left behind', () => {
    expect(page).toContain('class="verdict verdict-violated"');
    expect(page).toContain('Claims violated');
    expect(page).toContain('No fault left behind');
    expect(page).toContain('<span class="badge status-completed">completed</span>');
  });

  it('lists each claim with its expectation and measured value in units', () => {
    const claims = /<table class="claims">[\s\S]*?<\/table>/.exec(page)?.[0] ?? '';
    expect(claims.match(/<tr class="claim-held">/g)).toHaveLength(7);
    expect(claims.match(/<tr class="claim-violated">/g)).toHaveLength(1);
    expect(claims).toMatch(/✗ violated[\s\S]*?resilient[\s\S]*?p99[\s\S]*?&lt; 100 ms[\s\S]*?112 ms/);
    expect(claims).toContain('≥ 99%');
    expect(claims).toContain('99.8%');
    expect(claims).toContain('coin <span class="muted">service</span>');
  });

  it('tables each phase and gateway with formatted numbers', () => {
    const table = /<table class="phase-table">[\s\S]*?<\/table>/.exec(page)?.[0] ?? '';
    expect(table.match(/<td class="gateway">/g)).toHaveLength(9);
    // naive in the fault phase: 1,000 requests, p50 411 ms, p99 422 ms, max 436 ms.
    expect(table).toMatch(/naive<\/td>\s*<td class="num">1,000<\/td>\s*<td class="num">49.9 rps<\/td>/);
    expect(table).toContain('<td class="num strong">422 ms</td>');
    expect(table).toContain('<td class="num">99.7%</td>');
    expect(table).toContain('<span class="mono">5xx:503</span> 2');
    expect(table).toContain('<td class="num">3.9 ms</td>');
  });

  it('shows calibration, service counters and the faults applied', () => {
    const calibration = /<table class="calibration">[\s\S]*?<\/table>/.exec(page)?.[0] ?? '';
    expect(calibration).toContain('latency on coin (delay 400ms, jitter 20ms)');
    expect(calibration).toMatch(
      /added latency<\/td><td class="num">400 ms<\/td><td class="num strong">401 ms<\/td>/,
    );
    expect(calibration).toContain('+1.3 ms');
    expect(calibration).toMatch(
      /request latency<\/td><td class="num">200 ms<\/td><td class="num strong">200 ms<\/td><td class="num">\+0.4 ms<\/td>/,
    );
    expect(calibration).toMatch(/response latency<\/td><td class="num">200 ms<\/td>/);

    const services = /<table class="services">[\s\S]*?<\/table>/.exec(page)?.[0] ?? '';
    for (const service of ['account', 'archive', 'vip', 'like', 'coin'])
      expect(services).toContain(`>${service}<`);

    const faults = /<table class="faults">[\s\S]*?<\/table>/.exec(page)?.[0] ?? '';
    expect(faults).toContain('coin-1, coin-2');
    expect(faults).toContain('delay 400 ms, jitter 20 ms');
    expect(faults).toContain('fault-proxy');
    expect(faults).toContain('14:03:22.418');
  });

  it('flags a calibration far from the configured fault with its ratio', () => {
    const doubled: RunResult = {
      ...sampleResult,
      calibration: [{ ...sampleResult.calibration[0]!, observed: { addedLatencyMs: 980 } }],
    };
    expect(renderReport(doubled)).toContain('<span class="off">+580 ms (×2.5)</span>');
  });

  it('shows a one-way latency way by way, 0 ms on the way it leaves alone', () => {
    const onRequests: RunResult = {
      ...sampleResult,
      calibration: [
        {
          ...sampleResult.calibration[0]!,
          fault: 'latency on coin (delay 300ms on requests)',
          configured: { addedLatencyMs: 300, jitterMs: 0, requestLatencyMs: 300, responseLatencyMs: 0 },
          observed: {
            addedLatencyMs: 301.2,
            samples: 40,
            jitterMs: 0,
            requestLatencyMs: 301,
            responseLatencyMs: 0.2,
          },
        },
      ],
    };
    const calibration =
      /<table class="calibration">[\s\S]*?<\/table>/.exec(renderReport(onRequests))?.[0] ?? '';
    const rows = [
      ...calibration.matchAll(
        /<td>([a-z ]+)<\/td><td class="num">([^<]*)<\/td><td class="num strong">([^<]*)</g,
      ),
    ];
    expect(rows.map((r) => r.slice(1))).toEqual([
      ['added latency', '300 ms', '301 ms'],
      ['jitter', '0 ms', '0 ms'],
      ['request latency', '300 ms', '301 ms'],
      ['response latency', '0 ms', '0.2 ms'],
      ['samples', '—', '40'],
    ]);
  });

  it('escapes everything that comes from the result', () => {
    const evil = '<script>alert("x")</script>';
    const run = sampleResult.runs[0]!;
    const hostile: RunResult = {
      ...sampleResult,
      experiment: { name: evil, description: `<img src=x onerror=alert(1)>`, file: `"><b>${evil}` },
      runId: evil,
      error: evil,
      status: 'failed',
      leftoverFaults: [{ instance: evil, injector: 'fault-agent', id: evil, kind: evil }],
      runs: [
        {
          ...run,
          variant: evil,
          phases: run.phases.map((p) => ({
            ...p,
            name: `${p.name}${evil}`,
            gateways: { naive: { ...p.gateways.naive!, errors: { [evil]: 3 } } },
          })),
        },
      ],
      claims: [
        { ...sampleResult.claims[0]!, phase: evil, expected: evil, metric: evil, reason: evil, holds: null },
      ],
      calibration: [{ ...sampleResult.calibration[0]!, fault: evil, note: evil, observed: { [evil]: 1 } }],
      verdict: 'no-verdict',
      verdictReason: evil,
    };
    const out = renderReport(hostile);
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('<img');
    expect(out).not.toContain('"><b>');
    expect(out).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(out.match(/<svg /g)).toHaveLength(2);
  });

  it('renders an aborted run: a phase cut short, one missing, no verdict', () => {
    const out = renderReport(abortedResult);
    expect(out).toContain('<span class="badge status-aborted">aborted</span>');
    expect(out).toContain('class="verdict verdict-no-verdict"');
    expect(out).toContain('The run was aborted:');
    expect(out).toContain('cut short: 8 s of 20 s');
    expect(out).toContain('data-band="fault (cut short)"');
    expect(out).not.toContain('data-band="recovery"');
    expect(out.match(/<tr class="claim-open">/g)).toHaveLength(8);
    expect(out).toContain('the run aborted');
    expect(out).toContain('Nothing to calibrate');
  });

  it('renders results with nothing measured without throwing', () => {
    const run = sampleResult.runs[0]!;
    const bare: VariantRun = {
      ...run,
      warmupMs: 0,
      timeseries: [],
      phases: [{ ...run.phases[0]!, partial: true, gateways: {}, services: {} }],
    };
    const out = renderReport({ ...abortedResult, runs: [bare] });
    expect(out.match(/<svg /g)).toHaveLength(2);
    expect(out).toContain('no measurements');
    expect(out).toContain('no gateway measured');
    expect(out).toContain('No service counters recorded.');

    const nothing = renderReport({ ...abortedResult, runs: [], claims: [], calibration: [] });
    expect(nothing).toContain('No measurements: the run ended before any load was sent.');
    expect(nothing).toContain('The experiment makes no claims.');
    expect(nothing).not.toContain('<svg');
  });

  it('names a variant and its settings, with two charts for each', () => {
    const run = sampleResult.runs[0]!;
    const out = renderReport({
      ...sampleResult,
      runs: [
        { ...run, variant: 'recovery-off', settings: { workerRecovery: false } },
        { ...run, variant: 'recovery-on', settings: { workerRecovery: true } },
      ],
    });
    expect(out.match(/<svg /g)).toHaveLength(4);
    expect(out).toContain('Variant <q>recovery-off</q>');
    expect(out).toContain('worker panic recovery off');
    expect(out).toContain('worker panic recovery on');
    // Ids inside each SVG stay unique across the page.
    expect(out).toContain('id="v0-latency-plot"');
    expect(out).toContain('id="v1-latency-plot"');
  });

  it('says the trust mode of each variant, and what a rogue client got', () => {
    const run = sampleResult.runs[0]!;
    const phase = run.phases[0]!;
    const out = renderReport({
      ...sampleResult,
      runs: [
        {
          ...run,
          variant: 'full',
          settings: { trust: 'full' },
          trust: 'full',
          phases: [
            {
              ...phase,
              rogue: {
                service: 'coin',
                calls: 20,
                served: 0,
                refused: { TRUST_NEEDS_MTLS: 19 },
                failed: { ECONNRESET: 1 },
              },
            },
          ],
        },
        { ...run, variant: 'lab', settings: {}, trust: 'half' },
      ],
    });
    expect(out).toContain('trust full');
    expect(out).toMatch(/trust half \(the lab(&#39;|&#x27;|')s\)/);
    expect(out).toContain('Rogue calls straight to a backend');
    expect(out).toContain(
      '<td>coin</td><td>20</td><td>0</td><td>TRUST_NEEDS_MTLS 19</td><td>ECONNRESET 1</td>',
    );
  });

  it('lists the faults left behind in red, and says when it could not check', () => {
    const leftover = renderReport({
      ...sampleResult,
      leftoverFaults: [{ instance: 'coin-1', injector: 'fault-proxy', id: 'run-1-fault-0', kind: 'latency' }],
    });
    expect(leftover).not.toContain('No fault left behind');
    expect(leftover).toContain('1 fault was still active after the run');
    expect(leftover).toContain('<span class="mono">coin-1</span> by fault-proxy');

    const unknown = renderReport({ ...sampleResult, auditError: 'control API unreachable' });
    expect(unknown).not.toContain('No fault left behind');
    expect(unknown).toContain('Leftover faults unknown');
  });

  it("lists the fault proxies that restarted, with what became of the run's faults on them", () => {
    expect(page).not.toContain('Fault proxies restarted');
    const run = sampleResult.runs[0]!;
    const note =
      "coin-1's fault proxy restarted and lost this run's faults on it; the lease renewal put them back at 14:03:30";
    const phases = run.phases.map((p) =>
      p.name === 'fault'
        ? {
            ...p,
            proxyRestarts: [
              {
                instance: 'coin-1',
                restarts: 1,
                lastExitAt: '2026-11-24T14:03:29.000Z',
                faults: 'reapplied' as const,
                reappliedAt: ['2026-11-24T14:03:30.000Z'],
                note,
              },
            ],
          }
        : { ...p, proxyRestarts: [] },
    );
    const out = renderReport({ ...sampleResult, runs: [{ ...run, phases }] });
    const table =
      /<h3>Fault proxies restarted<\/h3>\s*<div class="table-wrap"><table class="proxy-restarts">[\s\S]*?<\/table>/.exec(
        out,
      )?.[0] ?? '';
    expect(table).toContain('<td>fault</td><td class="mono">coin-1</td><td class="num hot">1</td>');
    expect(table).toContain('<td class="strong">lost, put back</td>');
    expect(table).toContain('coin-1&#39;s fault proxy restarted and lost this run&#39;s faults on it');
    expect(table.match(/<tr>/g)).toHaveLength(2);
  });

  it('warns when the lab was not steady when measuring began, and marks that warm-up on the charts', () => {
    expect(page).not.toContain('not steady');
    const run = sampleResult.runs[0]!;
    const unsteady: VariantRun = {
      ...run,
      warmupMs: 30_000,
      warmup: {
        ms: 30_000,
        minMs: 1_000,
        maxMs: 30_000,
        steady: false,
        reason: 'second 29: naive 57% ok, p50 1.93s, p99 2s (over 1s)',
      },
    };
    const out = renderReport({ ...sampleResult, runs: [unsteady] });
    expect(out).toContain(
      '<strong>The lab was not steady when measuring began</strong>: after 30 s of warm-up <span class="mono">(second 29: naive 57% ok, p50 1.93s, p99 2s (over 1s))</span>. The first phase may show the lab warming up rather than the experiment.',
    );
    for (const svg of charts(out)) expect(svg).toContain('<title>warm-up: the lab not steady</title>');
    const two = renderReport({
      ...sampleResult,
      runs: [
        { ...run, variant: 'on' },
        { ...unsteady, variant: 'off' },
      ],
    });
    expect(two).toContain(
      'not steady when measuring began</strong>: variant <q>off</q> after 30 s of warm-up',
    );
    // A run that ended in its warm-up measured nothing: its status says so already.
    const cut = {
      ...unsteady,
      phases: [],
      warmup: { ...unsteady.warmup, reason: 'the run ended during the warm-up' },
    };
    expect(renderReport({ ...abortedResult, runs: [cut] })).not.toContain('not steady when measuring began');
  });

  it('warns when the load generator fell behind', () => {
    const out = renderReport({
      ...sampleResult,
      generator: { fellBehind: true, reason: 'fault: naive 40 of 1000 sends dropped' },
      verdict: 'no-verdict',
    });
    expect(out).toContain('The load generator fell behind');
    expect(out).toContain('naive 40 of 1000 sends dropped');
  });
});
