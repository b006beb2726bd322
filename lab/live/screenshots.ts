/**
 * `npm run screenshots`: the README's pictures, from a real run. Starts a lab of its own (a private home,
 * a free port range), runs test/e2e/fixtures/live-demo.yaml with the live page open in headless Chromium
 * at 1280×720, and writes
 *   docs/live-page.png — the live page in the middle of the fault phase;
 *   docs/report.png    — the top of that run's report.html.
 * Then it stops the lab and removes its home. About a minute; needs /usr/bin/chromium.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { findFreePortBase } from '../local/port-check.ts';
import { REPO_ROOT } from '../local/state.ts';
import {
  CHROMIUM_PATH,
  chromiumInstalled,
  launchChromium,
  offlineContext,
  waitForStage,
} from './chromium.ts';

const BIN = path.join(REPO_ROOT, 'bin', 'chaos-lab.js');
const EXPERIMENT = path.join(REPO_ROOT, 'test', 'e2e', 'fixtures', 'live-demo.yaml');
const DOCS = path.join(REPO_ROOT, 'docs');
/** Into the fault phase far enough for its shading and its effect to show, before it ends. */
const SHOT_WHEN_LEFT_S = 4;

function chaosLab(home: string, args: readonly string[], onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, CHAOS_LAB_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      process.stdout.write(`  | ${line}\n`);
      onLine?.(line);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  return child;
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<number> {
  if (!chromiumInstalled()) {
    process.stderr.write(
      `screenshots: no browser at ${CHROMIUM_PATH}; install it with: apt-get install chromium\n`,
    );
    return 1;
  }
  mkdirSync(DOCS, { recursive: true });
  const home = mkdtempSync(path.join(tmpdir(), 'chaos-lab-screenshots-'));
  const base = await findFreePortBase();
  let run: ChildProcess | undefined;
  try {
    process.stdout.write(`screenshots: starting a lab at port base ${base} (home ${home})\n`);
    const up = await exitOf(chaosLab(home, ['up', '--detach', '--no-live', '--port-base', String(base)]));
    if (up !== 0) throw new Error(`chaos-lab up failed (exit ${up})`);

    let liveUrl: string | undefined;
    let report: string | undefined;
    run = chaosLab(
      home,
      ['run', EXPERIMENT, '--out', path.join(home, 'results'), '--live-port', String(base + 92)],
      (line) => {
        liveUrl ??= /^live: (\S+)/.exec(line)?.[1];
        report ??= /^report: +(\S+)/.exec(line)?.[1];
      },
    );
    const runExit = exitOf(run);
    for (let i = 0; i < 100 && liveUrl === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    if (liveUrl === undefined) throw new Error('the run printed no live: line');

    const browser = await launchChromium();
    try {
      const origin = new URL(liveUrl).origin;
      const live = await offlineContext(browser, { allowed: [origin] });
      const page = await live.context.newPage();
      await page.goto(liveUrl);
      await waitForStage(page, 'fault', { maxLeftS: SHOT_WHEN_LEFT_S, timeoutMs: 90_000 });
      const livePng = path.join(DOCS, 'live-page.png');
      await page.screenshot({ path: livePng });
      process.stdout.write(`screenshots: wrote ${path.relative(REPO_ROOT, livePng)}\n`);

      const code = await runExit;
      if (report === undefined) throw new Error(`the run (exit ${code}) printed no report: line`);
      const offline = await offlineContext(browser, { allowed: [], files: true });
      const reportPage = await offline.context.newPage();
      await reportPage.goto(pathToFileURL(path.resolve(REPO_ROOT, report)).href);
      const reportPng = path.join(DOCS, 'report.png');
      // From the verdict down to the end of the first chart: what a reader looks at first.
      const chart = await reportPage.locator('figure').first().boundingBox();
      if (!chart) throw new Error('the report has no chart');
      await reportPage.screenshot({
        path: reportPng,
        fullPage: true,
        clip: { x: 0, y: 0, width: 1280, height: Math.ceil(chart.y + chart.height + 24) },
      });
      process.stdout.write(`screenshots: wrote ${path.relative(REPO_ROOT, reportPng)}\n`);
      const blocked = [...live.blocked, ...offline.blocked];
      if (blocked.length > 0) throw new Error(`the pages asked for other origins: ${blocked.join(', ')}`);
    } finally {
      await browser.close();
    }
    return 0;
  } finally {
    // A failed shot must not leave the run going: Ctrl-C rolls it back.
    if (run && run.exitCode === null && run.signalCode === null) {
      run.kill('SIGINT');
      await exitOf(run);
    }
    await exitOf(chaosLab(home, ['down']));
    rmSync(home, { recursive: true, force: true });
  }
}

process.exit(await main());
