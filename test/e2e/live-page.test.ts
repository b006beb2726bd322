/**
 * The live pages and the report in a real browser (Debian's Chromium through playwright-core), against a
 * real detached lab: the `up` page moves with traffic sent by hand; the page of a real `chaos-lab run`
 * draws its charts, moves while the load runs, shows the fault phase and shades its window, and ends with
 * the verdict; the run's report.html renders its charts from a file. Every context blocks every origin but
 * the page's own, and every request the pages make is recorded and checked: no page can pass by fetching
 * something it should not need.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM_PATH,
  chromiumInstalled,
  launchChromium,
  offlineContext,
  readStage,
  waitForStage,
} from '../../lab/live/chromium.ts';
import { REPO_ROOT } from '../../lab/local/state.ts';
import {
  cli,
  controlStatus,
  downAndCheck,
  eventually,
  freePortBase,
  makeHome,
  pidsOf,
  removeHome,
  upDetached,
} from './helpers.ts';

const installed = chromiumInstalled();
if (!installed) {
  if (process.env.CI)
    throw new Error(`CI must run the browser tests: no browser at ${CHROMIUM_PATH} (.ci/run installs it)`);
  process.stdout.write(
    `live-page.test.ts: skipped — no browser at ${CHROMIUM_PATH} (apt-get install chromium)\n`,
  );
}

const EXPERIMENT = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'live-short.yaml');

/** The number in a metric cell, e.g. `1,234` → 1234, `20.0rps` → 20. */
async function metricOf(page: Page, gateway: string, metric: string): Promise<number> {
  const text = await page.locator(`[data-gateway="${gateway}"] [data-metric="${metric}"]`).textContent();
  return Number((text ?? '').replace(/,/g, '').replace(/[^\d.].*$/, ''));
}

/** How many points a chart's line has (its path's M and L commands). */
async function pointsOf(page: Page, chart: 'latency' | 'rates', series: string): Promise<number> {
  const locator = page.locator(`#${chart} [data-series="${series}"] path`);
  if ((await locator.count()) === 0) return 0;
  return ((await locator.getAttribute('d')) ?? '').match(/[ML]/g)?.length ?? 0;
}

/** Every request a page makes, by URL. */
function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request) => urls.push(request.url()));
  return urls;
}

describe.skipIf(!installed)('the live pages and the report in Chromium', () => {
  let home: string;
  let base: number;
  let browser: Browser;
  const seen = new Set<number>();

  beforeAll(async () => {
    home = makeHome();
    base = await freePortBase();
    const status = await upDetached(home, base);
    for (const pid of pidsOf(status)) seen.add(pid);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    if (home) {
      const down = await downAndCheck(home, [...seen]);
      expect(down.survivors).toEqual([]);
      removeHome(home);
    }
  });

  it("the up page (base+91) shows the lab's gateways and moves with traffic sent by hand", async () => {
    const status = await controlStatus(home);
    expect(status.liveUrl).toBe(`http://127.0.0.1:${base + 91}/`);
    expect((await cli(home, ['status'])).stdout).toContain(`live page http://127.0.0.1:${base + 91}/`);
    const origin = new URL(status.liveUrl!).origin;
    const { context, blocked } = await offlineContext(browser, { allowed: [origin] });
    try {
      const page = await context.newPage();
      const requests = recordRequests(page);
      await page.goto(status.liveUrl!);
      expect((await readStage(page)).stage).toBe('watching the lab');
      await expect(page.locator('#foot').textContent()).resolves.toMatch(
        /estimated from its histogram's buckets/,
      );
      const before = await metricOf(page, 'resilient', 'requests');

      // Bounded traffic to one gateway: 40 pages over about 4 s.
      const gateway = status.gateways.resilient!;
      const sent = (async () => {
        for (let i = 0; i < 40; i++) {
          await (
            await fetch(`${gateway}/api/video/${100 + i}`, { signal: AbortSignal.timeout(5_000) })
          ).arrayBuffer();
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const moved = await eventually(
        'the resilient gateway’s numbers to move on the page',
        async () => {
          const requests = await metricOf(page, 'resilient', 'requests');
          const rate = await metricOf(page, 'resilient', 'rps');
          return requests > before && rate > 0 ? { requests, rate } : undefined;
        },
        15_000,
        250,
      );
      await sent;
      expect(moved.requests).toBeGreaterThan(before);
      expect(await pointsOf(page, 'latency', 'resilient p99')).toBeGreaterThanOrEqual(1);
      expect(requests.filter((url) => !url.startsWith(`${origin}/`))).toEqual([]);
      expect(blocked).toEqual([]);
    } finally {
      await context.close();
    }
  });

  let reportFile: string | undefined;

  it('the run page draws the charts, moves while the load runs, shades the fault phase, ends with the verdict', async () => {
    const livePort = base + 92;
    let stdout = '';
    const run: ChildProcess = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin', 'chaos-lab.js'),
        'run',
        EXPERIMENT,
        '--out',
        path.join(home, 'results'),
        '--live-port',
        String(livePort),
      ],
      { cwd: REPO_ROOT, env: { ...process.env, CHAOS_LAB_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    run.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number>((resolve) => run.once('exit', (code) => resolve(code ?? -1)));
    const { context, blocked } = await offlineContext(browser, { allowed: [`http://127.0.0.1:${livePort}`] });
    try {
      const url = await eventually('the live: line', () => /^live: (\S+)$/m.exec(stdout)?.[1], 20_000, 100);
      expect(url).toBe(`http://127.0.0.1:${livePort}/`);
      const page = await context.newPage();
      const requests = recordRequests(page);
      await page.goto(url);

      // The charts draw, and the numbers move while the load runs.
      await eventually(
        'a chart line with several points',
        async () => ((await pointsOf(page, 'latency', 'naive p99')) >= 4 ? true : undefined),
        60_000,
        250,
      );
      const first = await metricOf(page, 'naive', 'requests');
      await page.waitForTimeout(2_500);
      const later = await metricOf(page, 'naive', 'requests');
      expect(later).toBeGreaterThan(first);

      // The fault phase is shown, with what it injects, and its window is shaded on both charts.
      await waitForStage(page, 'fault', { timeoutMs: 60_000 });
      await expect(page.locator('#stage .stage-faults').textContent()).resolves.toContain('latency on coin');
      await eventually(
        'the fault window shaded',
        async () =>
          (await page.locator('#latency g.band-strong[data-band="fault"]').count()) === 1 &&
          (await page.locator('#rates g.band-strong[data-band="fault"]').count()) === 1
            ? true
            : undefined,
        10_000,
        200,
      );
      await expect(page.locator('#side').textContent()).resolves.toMatch(/Active faults.*latency on coin/);
      expect(await pointsOf(page, 'rates', 'resilient degraded')).toBeGreaterThanOrEqual(4);

      // The end: the verdict reaches the page before the command exits and the page goes away.
      const code = await exited;
      // 0 held; 1 when a shared machine made the generator fall behind (no verdict): both end a run.
      expect([0, 1], stdout).toContain(code);
      await page.locator('[data-verdict]').waitFor({ timeout: 10_000 });
      await expect(page.locator('#conn').textContent()).resolves.toMatch(/connection lost/);
      expect(requests.filter((u) => !u.startsWith(`http://127.0.0.1:${livePort}/`))).toEqual([]);
      expect(requests).toContain(`http://127.0.0.1:${livePort}/events`);
      expect(blocked).toEqual([]);
      reportFile = /^report: +(\S+)$/m.exec(stdout)?.[1];
    } finally {
      await context.close();
      if (run.exitCode === null && run.signalCode === null) {
        run.kill('SIGINT');
        await exited;
      }
    }
  });

  it("the run's report.html renders its charts from the file, asking for nothing else", async () => {
    expect(reportFile, 'the run printed its report').toBeDefined();
    const fileUrl = pathToFileURL(path.resolve(REPO_ROOT, reportFile!)).href;
    const { context, blocked } = await offlineContext(browser, { allowed: [], files: true });
    try {
      const page = await context.newPage();
      const requests = recordRequests(page);
      await page.goto(fileUrl);
      expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(2);
      const path99 = await page.locator('svg.chart [data-series="naive p99"] path').first().getAttribute('d');
      expect(path99?.match(/[ML]/g)?.length ?? 0).toBeGreaterThanOrEqual(10);
      expect(await page.locator('svg.chart g.band-strong[data-band="fault"]').count()).toBeGreaterThanOrEqual(
        1,
      );
      // The chart is laid out by the browser, not just present in the markup.
      const box = await page.locator('svg.chart').first().boundingBox();
      expect(box?.width ?? 0).toBeGreaterThan(600);
      expect(requests).toEqual([fileUrl]);
      expect(blocked).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
