/**
 * `chaos-lab run <name|file>`: validates the experiment, runs it on a target and prints where the results
 * are. Exit codes: 0 completed and every claim held; 1 a claim did not hold, no verdict (the generator fell
 * behind, a claim had no value) or the run failed; 2 invalid input (nothing started); 130 aborted
 * (Ctrl-C or SIGTERM: rolled back, partial result written).
 *
 * The first Ctrl-C aborts gracefully (rollback, partial result); a second one arms a forced exit for when
 * the rollback outlives its bound, so a hung lab cannot keep the terminal hostage. Faults left by a
 * forced exit expire with their leases.
 */
import path from 'node:path';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import { type Io, say, warn } from '../io.ts';
import { type CreateTargetOptions, labDriver, type TargetName, targetOptions } from '../lab-driver.ts';
import { startRunLive, withLiveFeed } from '../live/run-live.ts';
import type { K6Binary } from '../load/k6-binary.ts';
import { resolveExperiment, UnknownExperimentError } from '../runner/catalog.ts';
import { type Driver, type Experiment, ExperimentError, loadExperiment } from '../runner/experiment.ts';
import { createTerminalProgress, summaryLines } from '../runner/progress.ts';
import { resultsFolderProblem } from '../runner/results-folder.ts';
import { DEFAULT_TIMING, type RunContext, runExperiment, UnsupportedFaultError } from '../runner/run.ts';
import type { Target } from '../runner/target.ts';
import { LabBusyError } from '../runner/target.ts';

export type TargetFactory = (name: TargetName, options: CreateTargetOptions) => Promise<Target>;

/** The target's driver makes it, loaded on demand: validating a file must not load (or start) any lab code. */
export const createTarget: TargetFactory = async (name, options) => (await labDriver(name)).target(options);

export interface RunCommandOptions {
  /** @default `results` under the working directory */
  readonly out?: string;
  /** @default local */
  readonly target?: TargetName;
  /** kind: the kubeconfig context. @default kind-chaos-lab */
  readonly context?: string;
  /** Overrides the experiment's `load.driver`. @default the experiment's (builtin unless it says k6) */
  readonly driver?: Driver;
  /** Serve the live page, on this port if it is free. @default no page (the CLI asks for one unless --no-live) */
  readonly live?: { readonly port: number };
}

export interface RunCommandDeps {
  readonly createTarget?: TargetFactory;
  readonly isTTY?: boolean;
  /** Where SIGINT/SIGTERM are listened to. @default process */
  readonly signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** A forced exit after a second Ctrl-C. @default process.exit */
  readonly exit?: (code: number) => void;
  /** How k6 is found for the k6 driver. @default lab/load/k6-binary.ts's findK6 */
  readonly findK6?: (env: NodeJS.ProcessEnv) => Promise<K6Binary>;
  /** Everything else the run takes (clock, generator, timing), for tests. */
  readonly run?: Partial<Pick<RunContext, 'clock' | 'createGenerator' | 'renderReport' | 'timing'>>;
}

export async function runCommand(
  io: Io,
  nameOrFile: string,
  options: RunCommandOptions = {},
  deps: RunCommandDeps = {},
): Promise<number> {
  const cwd = process.cwd();
  const experiment = await load(io, nameOrFile, cwd);
  if (!experiment) return 2;
  const driver = await loadDriver(io, experiment, options.driver, deps);
  if (!driver) return 2;
  const outDir = await resultsFolder(cwd, options.out);

  const target = await (deps.createTarget ?? createTarget)(
    options.target ?? 'local',
    targetOptions(io, options.context, cwd),
  );
  const live = options.live
    ? await startRunLive(io, {
        port: options.live.port,
        resultsDir: display(path.resolve(cwd, options.out ?? 'results'), cwd),
        ...(driver.driver ? { driver: driver.driver.name } : {}),
      })
    : undefined;
  const progress = withLiveFeed(
    createTerminalProgress({
      write: io.stdout,
      isTTY: deps.isTTY ?? Boolean(process.stdout.isTTY),
      columns: process.stdout.columns,
    }),
    live?.sink,
  );
  const abort = new AbortController();
  const rollbackBoundMs = deps.run?.timing?.rollbackTimeoutMs ?? DEFAULT_TIMING.rollbackTimeoutMs;
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  let firstSignalAt: number | undefined;
  let forced: NodeJS.Timeout | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt === undefined) {
      firstSignalAt = Date.now();
      progress.note(
        `${signal}: rolling back… (again to force the exit if the rollback takes over ${formatDuration(rollbackBoundMs)})`,
      );
      abort.abort(signal);
      return;
    }
    if (forced) return;
    const left = Math.max(0, firstSignalAt + rollbackBoundMs - Date.now());
    progress.note(
      left > 0
        ? `${signal} again: exiting in ${formatDuration(left)} unless the rollback finishes first`
        : `${signal} again: the rollback is over its bound; exiting now (leases left expire by themselves)`,
    );
    forced = setTimeout(() => {
      progress.note('forced exit: faults not removed expire with their leases');
      exit(130);
    }, left);
  };
  const signals = deps.signals ?? process;
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  try {
    const outcome = await runExperiment({
      experiment,
      target,
      outDir,
      signal: abort.signal,
      progress,
      ...driver,
      ...deps.run,
    });
    progress.close();
    for (const line of summaryLines(outcome.result)) say(io, line);
    say(io, `results: ${display(outcome.dir, cwd)}`);
    if (outcome.files.report) say(io, `report:  ${display(outcome.files.report, cwd)}`);
    if (outcome.result.status === 'failed') warn(io, `chaos-lab: the run failed: ${outcome.result.error}`);
    else if (outcome.result.verdict === 'no-verdict' && outcome.result.status === 'completed') {
      warn(io, `chaos-lab: no verdict: ${outcome.result.verdictReason}`);
    }
    return outcome.exitCode;
  } catch (err) {
    progress.close();
    if (err instanceof UnsupportedFaultError) {
      warn(io, `chaos-lab: ${err.message}`);
      return 2;
    }
    if (err instanceof LabBusyError) {
      warn(io, `chaos-lab: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    clearTimeout(forced);
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
    // After the summary: the page shows the final state while the last lines print.
    await live?.close();
  }
}

/**
 * Where run folders go. A --out that can never be a writable folder (`/dev/null/x`, below a file, in a
 * read-only place, under /proc or /sys) is bad input, refused before the lab is touched; the check leaves
 * nothing behind (a run refused later, for a fault the target cannot inject, leaves no folder either), and
 * gives up on a filesystem that does not answer (results-folder.ts), so it never hangs.
 */
async function resultsFolder(cwd: string, out: string | undefined): Promise<string> {
  const dir = path.resolve(cwd, out ?? 'results');
  const problem = await resultsFolderProblem(dir);
  if (problem) {
    throw new CliError(
      `${out === undefined ? 'results/' : `--out ${out}`}: cannot write run folders in ${dir} (${problem})`,
      {
        exitCode: 2,
        hint: 'choose a folder you can write, e.g. --out /tmp/chaos-lab-results',
      },
    );
  }
  return dir;
}

/** The validated experiment, or undefined after printing every problem (exit 2). */
async function load(io: Io, nameOrFile: string, cwd: string): Promise<Experiment | undefined> {
  try {
    // Relative to the working directory, so messages name the file the way the user wrote it.
    return await loadExperiment(resolveExperiment(nameOrFile, { cwd }));
  } catch (err) {
    if (err instanceof UnknownExperimentError || err instanceof ExperimentError) {
      const [first, ...rest] = err.message.split('\n');
      warn(io, `chaos-lab: ${first}`);
      for (const line of rest) warn(io, line);
      if (err instanceof UnknownExperimentError) warn(io, 'hint: npx chaos-lab list shows every experiment');
      return undefined;
    }
    throw err;
  }
}

/**
 * The run context's load driver: the built-in generator, or k6 found and checked now — if it is missing,
 * the error says how to install it and nothing is started (undefined: exit 2).
 */
async function loadDriver(
  io: Io,
  experiment: Experiment,
  flag: Driver | undefined,
  deps: RunCommandDeps,
): Promise<Pick<RunContext, 'driver' | 'createGenerator'> | undefined> {
  const name = flag ?? experiment.load.driver;
  if (name === 'builtin') return { driver: { name } };
  const { findK6, K6NotFoundError, K6_INSTALL_STEPS } = await import('../load/k6-binary.ts');
  let k6: K6Binary;
  try {
    k6 = await (deps.findK6 ?? ((env) => findK6({ env })))(io.env);
  } catch (err) {
    if (!(err instanceof K6NotFoundError)) throw err;
    const why = flag ? '--driver k6' : `load.driver: k6 in ${experiment.file}`;
    warn(io, `chaos-lab: ${why} needs k6 v2, which was not found; nothing was started:`);
    for (const line of err.looked) warn(io, `  ${line}`);
    for (const line of K6_INSTALL_STEPS) warn(io, `hint: ${line}`);
    return undefined;
  }
  const { createK6Generator } = await import('../load/k6-driver.ts');
  say(io, `load driver: k6 ${k6.version} (${k6.path}); latency from the actual send`);
  return {
    driver: { name: 'k6', version: k6.version },
    createGenerator: (generatorOptions) => createK6Generator({ ...generatorOptions, k6 }),
  };
}

function display(file: string, cwd: string): string {
  const relative = path.relative(cwd, file);
  return relative && !relative.startsWith('..') ? relative : file;
}
