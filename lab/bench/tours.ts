/**
 * `npm run bench:tours`: the workshop tour, run the way `npm start` runs it, N times in a row (10
 * unless `--times N`), each on a lab of its own started by the run; it reports how many held and
 * writes every verdict to `results/bench-tours.json`. The first tour compiles the lab's processes
 * afresh (into a scratch folder, as on a fresh clone) unless `--warm` is given.
 *
 * The question it answers is the workshop's: thirty laptops run `npm start` once; does each get
 * its verdict?
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BUILD_ROOT_ENV } from '../build/lab-build.ts';
import { REPO_ROOT } from '../repo-root.ts';
import type { ClaimResult } from '../runner/result.ts';

const CLI = join(REPO_ROOT, 'bin/chaos-lab.js');

interface Args {
  readonly times: number;
  readonly warm: boolean;
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Args {
  let times = 10;
  let warm = false;
  let out = join(REPO_ROOT, 'results/bench-tours.json');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--times' && /^\d+$/.test(argv[i + 1] ?? '') && Number(argv[i + 1]) >= 1) {
      times = Number(argv[++i]);
    } else if (arg === '--warm') warm = true;
    else if (arg === '--out' && argv[i + 1]) out = argv[++i] as string;
    else {
      throw new Error(
        `unknown argument ${JSON.stringify(arg)}: expected --times N (N ≥ 1), --warm or --out FILE`,
      );
    }
  }
  return { times, warm, out };
}

interface TourOutcome {
  readonly tour: number;
  readonly exitCode: number | null;
  readonly seconds: number;
  readonly verdict: string;
  readonly verdictReason: string | null;
  /** Claims that did not hold, as `gateway/phase metric expected, measured actual`. */
  readonly missed: string[];
  readonly firstBuild: boolean;
}

type ClaimRecord = Pick<
  ClaimResult,
  'variant' | 'phase' | 'gateway' | 'service' | 'metric' | 'expected' | 'actual' | 'holds'
>;

function runTour(n: number, env: NodeJS.ProcessEnv, out: string, firstBuild: boolean): Promise<TourOutcome> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    // As `npm start` runs it (`run tour`), with the run folder in a scratch place.
    const child = spawn(process.execPath, [CLI, 'run', 'tour', '--no-live', '--out', out], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('exit', (code) => {
      const seconds = Math.round((performance.now() - began) / 100) / 10;
      const folder = readdirSync(out).find((name) => name.endsWith('-tour'));
      if (!folder) {
        resolve({
          tour: n,
          exitCode: code,
          seconds,
          verdict: 'no-result',
          verdictReason: tail.trim().split('\n').slice(-3).join(' / '),
          missed: [],
          firstBuild,
        });
        return;
      }
      const result = JSON.parse(readFileSync(join(out, folder, 'result.json'), 'utf8')) as {
        verdict: string;
        verdictReason?: string | null;
        claims?: ClaimRecord[];
      };
      const missed = (result.claims ?? [])
        .filter((c) => c.holds === false)
        .map(
          (c) =>
            `${c.gateway ?? c.service ?? '?'}/${c.phase} ${c.metric} ${c.expected}, measured ${c.actual}`,
        );
      resolve({
        tour: n,
        exitCode: code,
        seconds,
        verdict: result.verdict,
        verdictReason: result.verdictReason ?? null,
        missed,
        firstBuild,
      });
    });
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(`the tour, ${args.times} times in a row, as \`npm start\` runs it (${cpus().length} cores)`);
  const scratch = mkdtempSync(join(tmpdir(), 'chaos-lab-tours-'));
  const outcomes: TourOutcome[] = [];
  try {
    for (let n = 1; n <= args.times; n++) {
      const home = join(scratch, `home-${n}`);
      const out = join(scratch, `out-${n}`);
      mkdirSync(out, { recursive: true });
      const firstBuild = n === 1 && !args.warm;
      const env: NodeJS.ProcessEnv = { ...process.env, CHAOS_LAB_HOME: home };
      if (firstBuild) env[BUILD_ROOT_ENV] = join(scratch, 'build');
      else delete env[BUILD_ROOT_ENV];
      const outcome = await runTour(n, env, out, firstBuild);
      outcomes.push(outcome);
      log(
        `  tour ${n}: ${outcome.verdict} in ${outcome.seconds} s${firstBuild ? ' (compiled afresh first)' : ''}${outcome.verdictReason ? ` — ${outcome.verdictReason}` : ''}${outcome.missed.length ? ` — missed: ${outcome.missed.join('; ')}` : ''}`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const held = outcomes.filter((o) => o.verdict === 'held').length;
  log(`${held} of ${outcomes.length} tours held`);
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(
    args.out,
    `${JSON.stringify({ at: new Date().toISOString(), cpus: cpus().length, node: process.version, held, of: outcomes.length, tours: outcomes }, null, 2)}\n`,
  );
  log(`written to ${args.out}`);
  process.exitCode = held === outcomes.length ? 0 : 1;
}

await main();
