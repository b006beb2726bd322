/**
 * The run of one experiment, in the phases of chaostoolkit's lifecycle and with what it lacks:
 *
 *   refuse   — every fault the target cannot inject is named before anything is touched;
 *   journal  — `<out>/<runId>/journal.jsonl` exists before the lab is touched, and grows line by line;
 *   prepare  — the target brings the lab up if needed;
 *   method   — per variant: settle, settings (a lease), one load generator for every gateway, a warm-up
 *              until the lab is steady (steady.ts), then per phase: settle, mark the generator's window,
 *              inject (leases renewed while the phase runs), wait, remove, calibrate, count;
 *   rollback — after an error or an abort, always: remove what is applied (clear everything as a last
 *              resort), clear settings, stop the load, each step bounded in time;
 *   audit    — ask the target what is still active, whatever happened before;
 *   result   — `result.json` (partial when aborted or failed) and `report.html`.
 *
 * Status (completed/aborted/failed) says how the run ended; the verdict says what the claims found.
 * Everything the run needs comes in one `RunContext`; the run's own state lives in one `ExperimentRun`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TrustMode } from '../../services/lib/trust.ts';
import { BACKENDS, type BackendName, type Strategy } from '../../services/topology.ts';
import { formatDuration } from '../duration.ts';
import type { InjectorName } from '../faults/kind.ts';
import { chosenName } from '../faults/registry.ts';
import { ENDPOINT_PATHS } from '../load/endpoints.ts';
import {
  createLoadGenerator,
  type LoadGenerator,
  type LoadGeneratorOptions,
  type LoadSummary,
} from '../load/generator.ts';
import { configuredOf, describeFault, isCalibrated } from './calibration.ts';
import { evaluateClaims } from './claims.ts';
import type { Experiment, Fault, Phase, RogueProbe, Variant } from './experiment.ts';
import { type Faults, faultsOf } from './faults.ts';
import { type Journal, openJournal, type RunEvent } from './journal.ts';
import { proxyRestartsOf } from './proxy-restarts.ts';
import {
  type CalibrationEntry,
  type DriverName,
  exitCodeOf,
  faultParams,
  gatewaySecond,
  generatorHealth,
  loadOf,
  type PhaseFault,
  type PhaseRecord,
  type RogueTally,
  type RunResult,
  type RunStatus,
  type VariantRun,
  variantRun,
  verdictOf,
  type Warmup,
  writeResult,
} from './result.ts';
import { makeFolders } from './results-folder.ts';
import { STEADY_DEFAULTS, SteadyWatch, steadyCriteria } from './steady.ts';
import type {
  AppliedFault,
  LeftoverFault,
  ProxyCounters,
  RogueAnswer,
  ServiceCounters,
  Target,
  TargetInfo,
} from './target.ts';

// ---------------------------------------------------------------------------------------------------------
// The run context

export interface RunClock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms`, or rejects as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: RunClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** Where the run tells the person watching what it is doing (the terminal, or a test's recorder). */
export interface ProgressSink {
  /** Every journal event, as it is journaled. */
  event(event: RunEvent): void;
  /** A line for a human: the target's start-up progress, rollback steps, warnings. */
  note(line: string): void;
}

export interface RunTiming {
  /**
   * The shortest warm-up: load before the first phase, excluded from results, while connections, JIT
   * and caches warm up. The warm-up then goes on until the lab is steady (steady.ts), within
   * `steadyTimeoutMs`: a fixed wait was too short on a freshly started lab on two cores (seen: naive
   * serving 57% of pages at p50 1.93 s after 3 s) and needlessly long on a warm one.
   * @default 1000
   */
  readonly warmupMs: number;
  /**
   * The longest warm-up: a lab not steady by then is measured anyway, and the run says so (a warning,
   * `runs[].warmup.steady: false` in result.json, the report). Never less than `warmupMs`.
   * @default 30000
   */
  readonly steadyTimeoutMs: number;
  /** Consecutive steady seconds that make a steady lab. @default 2 */
  readonly steadySeconds: number;
  /** Length of every fault and settings lease: a runner killed with SIGKILL leaves nothing for longer. @default 10000 */
  readonly leaseMs: number;
  /** @default leaseMs / 3 (two renewals can fail before a lease runs out) */
  readonly renewEveryMs: number;
  /** Bound on each rollback, audit and release step. @default 15000 */
  readonly rollbackTimeoutMs: number;
}

export const DEFAULT_TIMING: Omit<RunTiming, 'renewEveryMs'> = {
  warmupMs: 1_000,
  steadyTimeoutMs: 30_000,
  steadySeconds: STEADY_DEFAULTS.seconds,
  leaseMs: 10_000,
  rollbackTimeoutMs: 15_000,
};

export type GeneratorFactory = (options: LoadGeneratorOptions) => LoadGenerator;
export type ReportRenderer = (result: RunResult) => string;

/** The load driver the run uses, as result.json names it. */
export interface DriverInfo {
  readonly name: DriverName;
  /** k6's version (`v2.2.0`). */
  readonly version?: string;
}

export interface RunContext {
  readonly experiment: Experiment;
  readonly target: Target;
  /** `<outDir>/<runId>/` receives the journal, result.json and report.html. */
  readonly outDir: string;
  /** Aborting it stops the run gracefully: rollback, partial result, status `aborted`. */
  readonly signal: AbortSignal;
  readonly progress: ProgressSink;
  /** @default systemClock */
  readonly clock?: RunClock;
  /**
   * Makes the variant's load generator; the command picks it from `--driver` or the experiment's
   * `load.driver` (the run itself never looks for k6). @default createLoadGenerator (the built-in one)
   */
  readonly createGenerator?: GeneratorFactory;
  /** What `createGenerator` makes, for result.json. @default { name: 'builtin' } */
  readonly driver?: DriverInfo;
  /** @default lab/report/report.ts's renderReport; null writes no report */
  readonly renderReport?: ReportRenderer | null;
  readonly timing?: Partial<RunTiming>;
  /**
   * Makes this run's lease ids its own: `r<start, to the second>-<nonce>-v0-p1-f0`. Two runs started in
   * the same second on one lab must not share a fault id (one would remove the other's fault).
   * @default 4 random hex digits
   */
  readonly leaseNonce?: string;
}

export interface RunOutcome {
  readonly result: RunResult;
  readonly dir: string;
  readonly files: { readonly journal: string; readonly result: string; readonly report: string | null };
  readonly exitCode: 0 | 1 | 130;
}

/** Faults the target cannot inject: thrown before anything is created or started. */
export class UnsupportedFaultError extends Error {
  override readonly name = 'UnsupportedFaultError';
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`cannot run ${file} on this target; nothing was started:\n${problems.join('\n')}`);
  }
}

/** Why each fault of the experiment cannot be injected by `target`; empty when every one can. */
export function unsupportedFaults(experiment: Experiment, target: Target): string[] {
  const problems: string[] = [];
  experiment.phases.forEach((phase, p) => {
    phase.faults.forEach((fault, f) => {
      const why = target.unsupported(fault);
      if (why !== undefined) {
        problems.push(
          `${experiment.file}: phases[${p}].faults[${f}] (phase "${phase.name}"): the ${target.name} target cannot inject ${fault.kind}: ${why}`,
        );
      }
    });
  });
  return problems;
}

/** The faults whose injector, asked for by name, the target finds cannot work on its lab (netem without sch_netem). */
export async function refusedByTheLab(
  experiment: Experiment,
  target: Target,
  signal: AbortSignal,
): Promise<string[]> {
  const asked = [
    ...new Set(experiment.phases.flatMap((p) => p.faults.flatMap((f) => (f.injector ? [f.injector] : [])))),
  ];
  if (asked.length === 0 || !target.refusedInjectors) return [];
  const refused = await target.refusedInjectors(asked, signal);
  const problems: string[] = [];
  experiment.phases.forEach((phase, p) => {
    phase.faults.forEach((fault, f) => {
      const why = fault.injector ? refused[fault.injector] : undefined;
      if (why !== undefined) {
        problems.push(
          `${experiment.file}: phases[${p}].faults[${f}] (phase "${phase.name}"): injector ${chosenName(fault.injector as InjectorName)} cannot work on the ${target.name} target: ${why}`,
        );
      }
    });
  });
  return problems;
}

/** Phases with a rogue client, on a target that cannot make rogue calls. */
export function unsupportedRogues(experiment: Experiment, target: Target): string[] {
  if (target.rogueCall) return [];
  return experiment.phases.flatMap((phase, p) =>
    phase.rogue
      ? [
          `${experiment.file}: phases[${p}].rogue (phase "${phase.name}"): the ${target.name} target cannot call a backend straight (rogue calls)`,
        ]
      : [],
  );
}

/** `20261124-093512-weak-dependency-latency`, in local time. */
export function runIdOf(experimentName: string, epochMs: number): string {
  return `${stampOf(epochMs, '-')}-${experimentName}`;
}

function stampOf(epochMs: number, separator: string): string {
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}${separator}${two(d.getHours())}${two(
    d.getMinutes(),
  )}${two(d.getSeconds())}`;
}

/**
 * Runs the experiment and writes its results. Throws only `UnsupportedFaultError` or `LabBusyError`
 * (another run holds the lab; nothing started) or an
 * error creating the results folder; every later failure ends as a result with status `failed`.
 */
export async function runExperiment(ctx: RunContext): Promise<RunOutcome> {
  const problems = [
    ...unsupportedFaults(ctx.experiment, ctx.target),
    ...unsupportedRogues(ctx.experiment, ctx.target),
  ];
  if (problems.length === 0)
    problems.push(...(await refusedByTheLab(ctx.experiment, ctx.target, ctx.signal)));
  if (problems.length > 0) throw new UnsupportedFaultError(ctx.experiment.file, problems);
  // One run per lab, taken before anything starts (a second one gets LabBusyError, naming this one).
  const held = await ctx.target.holdLab?.({
    pid: process.pid,
    experiment: ctx.experiment.name,
    startedAt: new Date().toISOString(),
  });
  try {
    return await new ExperimentRun(ctx).run();
  } finally {
    await held?.release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The run's state

/** One fault of the current phase, applied and not yet removed. */
interface ActiveFault {
  readonly fault: Fault;
  readonly applied: readonly AppliedFault[];
  readonly record: { removedAt: string | null };
  readonly phase: string;
}

interface VariantState {
  readonly variant: Variant;
  readonly index: number;
  readonly records: PhaseRecord[];
  /** Windows opened on the generator so far (the warm-up is window 0). */
  windows: number;
  generator: LoadGenerator | undefined;
  settingsApplied: boolean;
  finished: boolean;
  /** How long the target took to settle before the variant (0: no wait). */
  settledMs: number;
  /** When the load started (the warm-up with it); undefined before. */
  loadStartedAt: number | undefined;
  /** The warm-up as it ended; undefined until it has. */
  warmup: Warmup | undefined;
  /** The trust mode the variant runs in, where known. */
  readonly trust?: TrustMode;
}

class Abort extends Error {}

class ExperimentRun {
  private readonly clock: RunClock;
  private readonly timing: RunTiming;
  private readonly experiment: Experiment;
  private readonly target: Target;
  /** Set when the target saw the lab stop: nothing is left to audit, nor to ask again. */
  private labLost: string | undefined;
  /** Stops watching the lab (set once it is prepared). */
  private unwatch: (() => void) | undefined;
  /** Faults through the target: all-or-nothing injection, renewal, removal, audit, clear. */
  private readonly faults: Faults;
  private readonly runId: string;
  private readonly leasePrefix: string;
  private readonly startedAt: number;
  private dir = '';
  private journal: Journal | undefined;
  private info: TargetInfo | undefined;
  private readonly runs: VariantRun[] = [];
  private readonly calibration: CalibrationEntry[] = [];
  private current: VariantState | undefined;
  private active: ActiveFault[] = [];
  /** The fault proxies' counters as last read with the services' (targets that count them). */
  private proxyCounters: Readonly<Record<string, ProxyCounters>> | undefined;
  /** Why the run cannot go on although nobody aborted it (a lease could not be renewed). */
  private failure: Error | undefined;
  private readonly failed = new AbortController();
  /** An injection failed half-way: what it applied is unknown, so the rollback clears everything. */
  private partialInjection = false;
  /** Serializes changes to the lab's faults, so a renewal never lands after (and revives) a removal. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: RunContext) {
    this.clock = ctx.clock ?? systemClock;
    const leaseMs = ctx.timing?.leaseMs ?? DEFAULT_TIMING.leaseMs;
    this.timing = {
      warmupMs: ctx.timing?.warmupMs ?? DEFAULT_TIMING.warmupMs,
      steadyTimeoutMs: ctx.timing?.steadyTimeoutMs ?? DEFAULT_TIMING.steadyTimeoutMs,
      steadySeconds: ctx.timing?.steadySeconds ?? DEFAULT_TIMING.steadySeconds,
      leaseMs,
      renewEveryMs: ctx.timing?.renewEveryMs ?? Math.floor(leaseMs / 3),
      rollbackTimeoutMs: ctx.timing?.rollbackTimeoutMs ?? DEFAULT_TIMING.rollbackTimeoutMs,
    };
    this.experiment = ctx.experiment;
    this.target = ctx.target;
    this.faults = faultsOf(ctx.target, { now: () => this.clock.now() });
    this.startedAt = this.clock.now();
    this.runId = runIdOf(this.experiment.name, this.startedAt);
    this.leasePrefix = `r${stampOf(this.startedAt, '')}-${ctx.leaseNonce ?? randomBytes(2).toString('hex')}`;
  }

  async run(): Promise<RunOutcome> {
    this.open();
    let status: RunStatus = 'completed';
    let error: string | undefined;
    const rollbackProblems: string[] = [];
    try {
      await this.method();
    } catch (thrown) {
      const aborted = this.ctx.signal.aborted && this.failure === undefined;
      status = aborted ? 'aborted' : 'failed';
      error = aborted ? this.abortMessage() : messageOf(this.failure ?? thrown);
      this.emit({ type: 'rollback', reason: aborted ? 'abort' : 'error', error });
      rollbackProblems.push(...(await this.rollback()));
    }
    this.unwatch?.();
    const { leftoverFaults, auditError } = await this.audit();
    const releaseProblem = await this.release();
    if (releaseProblem) rollbackProblems.push(releaseProblem);
    return this.finish(status, error, leftoverFaults, auditError, rollbackProblems);
  }

  // -------------------------------------------------------------------------------------------------------
  // Journal

  private open(): void {
    makeFolders(this.ctx.outDir);
    // Two runs started in the same second get their own folders; 100 is far more than a second can hold.
    for (let n = 1; n <= 100 && !this.dir; n++) {
      const candidate = path.join(this.ctx.outDir, n === 1 ? this.runId : `${this.runId}-${n}`);
      try {
        mkdirSync(candidate);
        this.dir = candidate;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (!this.dir)
      throw new Error(`could not create a results folder for ${this.runId} in ${this.ctx.outDir}`);
    this.journal = openJournal(this.dir, () => this.clock.now());
    this.emit({
      type: 'run-started',
      runId: path.basename(this.dir),
      experiment: { name: this.experiment.name, file: this.experiment.file },
      target: this.target.name,
      variants: this.experiment.variants.map((v) => v.name),
      phases: this.experiment.phases.map((p) => ({ name: p.name, durationMs: p.durationMs })),
      gateways: this.experiment.gateways,
      rate: this.experiment.load.rate,
    });
  }

  private emit(event: RunEvent): void {
    this.journal?.append(event);
    try {
      this.ctx.progress.event(event);
    } catch {
      // A display that throws must not change what the run does.
    }
  }

  private warn(message: string): void {
    this.emit({ type: 'warning', message });
    this.ctx.progress.note(`warning: ${message}`);
  }

  // -------------------------------------------------------------------------------------------------------
  // Method

  private async method(): Promise<void> {
    this.info = await this.target.prepare((line) => this.ctx.progress.note(line), this.ctx.signal);
    this.unwatch = this.target.watch?.((why) => {
      this.labLost = `the lab stopped during the run: ${why}`;
      this.fail(new Error(this.labLost));
    });
    this.emit({ type: 'lab-ready', gateways: this.info.gateways });
    this.checkpoint();
    for (const [index, variant] of this.experiment.variants.entries()) {
      await this.runVariant(variant, index, this.info);
    }
  }

  /** Ends the run as failed (the first failure wins): every wait and step under way is interrupted. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.failed.abort(error);
  }

  /** Throws when the run must stop: an abort, or a failure found by the lease keeper or the load driver. */
  private checkpoint(): void {
    if (this.failure) throw this.failure;
    if (this.ctx.signal.aborted) throw new Abort('aborted');
  }

  private async runVariant(variant: Variant, index: number, info: TargetInfo): Promise<void> {
    const state: VariantState = {
      variant,
      index,
      records: [],
      windows: 0,
      generator: undefined,
      settingsApplied: false,
      finished: false,
      settledMs: 0,
      loadStartedAt: undefined,
      warmup: undefined,
      ...((variant.settings.trust ?? info.trust) ? { trust: variant.settings.trust ?? info.trust } : {}),
    };
    this.current = state;
    this.emit({ type: 'variant-started', variant: variant.name, settings: variant.settings });
    state.settledMs = await this.settle(variant.name, undefined);
    const settingsId = `${this.leasePrefix}-v${index}-settings`;
    const hasSettings = Object.keys(variant.settings).length > 0;
    if (hasSettings) {
      state.settingsApplied = true;
      await this.interruptible(
        this.exclusive(() => this.faults.applySettings(variant.settings, this.timing.leaseMs, settingsId)),
      );
      this.emit({
        type: 'settings-applied',
        variant: variant.name,
        settings: variant.settings,
        leaseMs: this.timing.leaseMs,
      });
    }
    const keeper = this.keepLeases(state, hasSettings ? settingsId : undefined);
    try {
      this.checkpoint();
      const generator = this.startLoad(state, info);
      await this.warmUp(state, generator);
      let counters = await this.interruptible(this.readCounters());
      for (const [phaseIndex, phase] of this.experiment.phases.entries()) {
        this.checkpoint();
        counters = await this.runPhase(state, generator, phase, phaseIndex, counters);
      }
      const summary = await this.interruptible(generator.stop({ drain: true }));
      this.finishVariant(state, summary);
    } finally {
      keeper.stop();
    }
    if (state.settingsApplied) {
      await this.interruptible(this.exclusive(() => this.faults.clearSettings()));
      this.settingsCleared(state);
    }
  }

  private startLoad(state: VariantState, info: TargetInfo): LoadGenerator {
    const gateways = this.experiment.gateways;
    const targets = gateways.map((gateway) => {
      const url = info.gateways[gateway];
      if (!url) throw new Error(`the ${this.target.name} target has no URL for the ${gateway} gateway`);
      return { name: gateway, url };
    });
    const generator = (this.ctx.createGenerator ?? createLoadGenerator)({
      targets,
      rate: this.experiment.load.rate,
      path: ENDPOINT_PATHS[this.experiment.load.endpoint],
      timeoutMs: this.experiment.load.timeoutMs,
      requestIdPrefix: `chaoslab-${this.leasePrefix}-v${state.index}`,
      plannedDurationMs:
        this.longestWarmupMs() + this.experiment.phases.reduce((sum, phase) => sum + phase.durationMs, 0),
      // A driver that dies (k6 exiting early) fails the run like a lost lease: rollback, partial result.
      onFailure: (error) => this.fail(new Error(`the load driver failed: ${error.message}`)),
    });
    generator.onSecond((second) => {
      const stats: Partial<Record<Strategy, ReturnType<typeof gatewaySecond>>> = {};
      for (const gateway of gateways) {
        const target = second.targets[gateway];
        if (target) stats[gateway] = gatewaySecond(target);
      }
      this.emit({ type: 'second', variant: state.variant.name, t: second.second, gateways: stats });
    });
    generator.start('warmup');
    state.generator = generator;
    state.loadStartedAt = this.clock.now();
    this.emit({
      type: 'load-started',
      variant: state.variant.name,
      warmupMs: this.timing.warmupMs,
      maxWarmupMs: this.longestWarmupMs(),
    });
    return generator;
  }

  private longestWarmupMs(): number {
    return Math.max(this.timing.warmupMs, this.timing.steadyTimeoutMs);
  }

  /**
   * The warm-up: load, unmeasured, for at least warmupMs and then until the generator's seconds say the
   * lab is steady (steady.ts), for at most steadyTimeoutMs in all. Each unsteady second is told as it
   * comes (`warmup-waiting`); a lab still unsteady at the bound is measured anyway, with a warning.
   */
  private async warmUp(state: VariantState, generator: LoadGenerator): Promise<void> {
    const variant = state.variant.name;
    const began = state.loadStartedAt ?? this.clock.now();
    const longest = this.longestWarmupMs();
    const watch = new SteadyWatch(
      this.experiment.gateways,
      steadyCriteria(this.experiment.load.timeoutMs, { seconds: this.timing.steadySeconds }),
    );
    let woken = new AbortController();
    const stopWatching = generator.onSecond((second) => {
      const verdict = watch.add(second);
      if (verdict.problems.length > 0) {
        this.emit({
          type: 'warmup-waiting',
          variant,
          t: verdict.t,
          elapsedMs: this.clock.now() - began,
          problems: verdict.problems,
        });
      }
      woken.abort();
    });
    try {
      await this.wait(this.timing.warmupMs);
      for (;;) {
        const left = longest - (this.clock.now() - began);
        if (watch.steady || left <= 0) break;
        woken = new AbortController();
        await this.waitOrWake(left, woken.signal);
      }
    } finally {
      stopWatching();
    }
    const ms = this.clock.now() - began;
    const reason = watch.reason;
    state.warmup = {
      ms,
      minMs: this.timing.warmupMs,
      maxMs: longest,
      steady: watch.steady,
      ...(reason !== undefined ? { reason } : {}),
    };
    this.emit({ type: 'warmup-finished', variant, ...state.warmup });
    if (!watch.steady) {
      const where = this.experiment.variants.length > 1 ? ` of variant "${variant}"` : '';
      this.warn(
        `the lab was not steady after ${formatDuration(ms)} of warm-up${where} (${reason}): measuring anyway; its first phase may show the lab warming up rather than the experiment`,
      );
    }
  }

  private async runPhase(
    state: VariantState,
    generator: LoadGenerator,
    phase: Phase,
    phaseIndex: number,
    previous: Readonly<Record<BackendName, ServiceCounters>>,
  ): Promise<Readonly<Record<BackendName, ServiceCounters>>> {
    const variant = state.variant.name;
    // Before the phase's first window: the wait belongs to the in-between window before it, like the
    // warm-up. Restarts while the lab settles belong to no phase: the counters are read again after.
    const settledMs = await this.settle(variant, phase.name);
    const before = settledMs > 0 ? await this.interruptible(this.readCounters()) : previous;
    const proxiesBefore = this.proxyCounters;
    const mark = (window: string) => {
      generator.mark(window);
      state.windows++;
    };
    // The phase's own window covers only the time its faults are all in place. The runner's own work at
    // the boundaries (injecting, removing, calibrating, reading counters) competes with the generator for
    // the event loop; requests intended meanwhile belong to the in-between windows, like the warm-up.
    if (phase.faults.length > 0) mark(`${phase.name}:injecting`);
    const record: PhaseRecord = {
      name: phase.name,
      plannedDurationMs: phase.durationMs,
      faults: [],
      services: {},
      partial: true,
      window: undefined,
      reapplied: [],
      ...(settledMs > 0 ? { settledMs } : {}),
    };
    state.records.push(record);
    this.emit({
      type: 'phase-started',
      variant,
      phase: phase.name,
      durationMs: phase.durationMs,
      faults: phase.faults.map((f) => describeFault(f)),
    });

    const injected: ActiveFault[] = [];
    for (const [faultIndex, fault] of phase.faults.entries()) {
      this.checkpoint();
      const id = `${this.leasePrefix}-v${state.index}-p${phaseIndex}-f${faultIndex}`;
      const { applied, active } = await this.interruptible(this.inject(fault, id, phase.name, record));
      if (active) injected.push(active);
      this.emit({
        type: 'fault-injected',
        variant,
        phase: phase.name,
        fault: describeFault(fault),
        kind: fault.kind,
        service: fault.service,
        applied: applied.map((a) => ({
          instance: a.instance,
          injector: a.injector,
          id: a.id,
        })),
        leaseMs: this.timing.leaseMs,
      });
    }

    mark(phase.name);
    record.window = state.windows;
    const rogue = phase.rogue ? this.rogueCalls(phase.rogue, phase.durationMs) : undefined;
    try {
      await this.wait(phase.durationMs);
    } finally {
      rogue?.stop();
    }
    mark(`${phase.name}:closing`);
    if (rogue) record.rogue = await rogue.tally;

    if (injected.length > 0) {
      await this.interruptible(this.removeFaults(injected, 'phase-end'));
      await this.interruptible(this.calibrate(variant, phase.name, injected));
    }
    const after = await this.interruptible(this.readCounters());
    record.services = withRogue(countersDelta(before, after), record.rogue);
    if (this.proxyCounters) {
      record.proxyRestarts = proxyRestartsOf(
        proxiesBefore ?? {},
        this.proxyCounters,
        record,
        this.clock.now(),
      );
      for (const restart of record.proxyRestarts) this.warn(`phase "${phase.name}": ${restart.note}`);
    }
    record.partial = false;
    this.emit({
      type: 'phase-finished',
      variant,
      phase: phase.name,
      partial: false,
      services: record.services,
      ...(record.proxyRestarts ? { proxyRestarts: record.proxyRestarts } : {}),
    });
    return after;
  }

  /**
   * Applies one fault; lease faults are remembered as active inside the lock, so a rollback racing with
   * the injection still sees what it applied (kill is instantaneous: nothing to remove).
   */
  private inject(
    fault: Fault,
    id: string,
    phase: string,
    record: PhaseRecord,
  ): Promise<{ applied: readonly AppliedFault[]; active: ActiveFault | undefined }> {
    return this.exclusive(async () => {
      let applied: AppliedFault[];
      try {
        applied = await this.faults.inject(fault, id, this.timing.leaseMs);
      } catch (err) {
        // The target may have applied it to some instances before failing on another.
        this.partialInjection = true;
        throw err;
      }
      const first = applied[0];
      if (!first)
        throw new Error(`the ${this.target.name} target applied ${describeFault(fault)} to no instance`);
      const injectedAt = applied.map((a) => a.injectedAt).sort()[0] ?? first.injectedAt;
      const faultRecord: PhaseFault & { removedAt: string | null } = {
        kind: fault.kind,
        service: fault.service,
        instances: applied.map((a) => a.instance),
        params: faultParams(fault),
        injector: first.injector,
        injectedAt,
        removedAt: fault.kind === 'kill' ? injectedAt : null,
      };
      record.faults.push(faultRecord);
      if (fault.kind === 'kill') return { applied, active: undefined };
      const active: ActiveFault = { fault, applied, record: faultRecord, phase };
      this.active.push(active);
      return { applied, active };
    });
  }

  private async removeFaults(
    faults: readonly ActiveFault[],
    reason: 'phase-end' | 'rollback',
  ): Promise<void> {
    await this.exclusive(async () => {
      await this.faults.remove(faults.flatMap((f) => f.applied));
      this.forget(faults, reason);
    });
  }

  private forget(faults: readonly ActiveFault[], reason: 'phase-end' | 'rollback'): void {
    const removedAt = new Date(this.clock.now()).toISOString();
    this.active = this.active.filter((a) => !faults.includes(a));
    const byPhase = new Map<string, string[]>();
    for (const fault of faults) {
      fault.record.removedAt = removedAt;
      byPhase.set(fault.phase, [...(byPhase.get(fault.phase) ?? []), ...idsOf(fault.applied)]);
    }
    for (const [phase, ids] of byPhase) {
      this.emit({ type: 'fault-removed', variant: this.current?.variant.name ?? '', phase, ids, reason });
    }
  }

  private async calibrate(variant: string, phase: string, faults: readonly ActiveFault[]): Promise<void> {
    for (const { fault, applied } of faults) {
      if (!isCalibrated(fault)) continue;
      const row = {
        variant,
        phase,
        fault: describeFault(fault),
        kind: fault.kind,
        service: fault.service,
        configured: configuredOf(fault),
      };
      try {
        this.calibration.push({ ...row, observed: await this.faults.observe(applied) });
      } catch (err) {
        this.calibration.push({ ...row, observed: {}, note: `not observed: ${messageOf(err)}` });
        this.warn(`calibration of ${row.fault} in ${phase}: ${messageOf(err)}`);
      }
    }
  }

  private finishVariant(state: VariantState, summary: LoadSummary | undefined): void {
    const run = variantRun(
      {
        ...state.variant,
        settledMs: state.settledMs,
        ...(state.trust ? { trust: state.trust } : {}),
      },
      state.warmup ?? this.cutWarmup(state),
      state.records,
      summary,
      this.experiment.gateways,
    );
    this.runs.push(run);
    state.finished = true;
    this.emit({
      type: 'variant-finished',
      variant: state.variant.name,
      phases: run.phases.map((p) => ({ name: p.name, gateways: p.gateways })),
    });
  }

  /** The warm-up of a variant whose run ended before it did (or before the load started). */
  private cutWarmup(state: VariantState): Warmup {
    const started = state.loadStartedAt !== undefined;
    return {
      ms: started ? this.clock.now() - (state.loadStartedAt as number) : 0,
      minMs: this.timing.warmupMs,
      maxMs: this.longestWarmupMs(),
      steady: false,
      reason: started ? 'the run ended during the warm-up' : 'the run ended before the load started',
    };
  }

  /**
   * Waits for the target to settle before a variant (`phase` undefined) or a phase, and says so when
   * it had to wait; resolves with how long that was.
   */
  private async settle(variant: string, phase: string | undefined): Promise<number> {
    if (!this.target.settle) return 0;
    const signal = AbortSignal.any([this.ctx.signal, this.failed.signal]);
    const { waitedMs } = await this.interruptible(
      this.target.settle((line) => this.ctx.progress.note(line), signal),
    );
    if (waitedMs <= 0) return 0;
    this.emit({ type: 'lab-settled', variant, ...(phase !== undefined ? { phase } : {}), waitedMs });
    const where = phase !== undefined ? `phase "${phase}"` : `variant "${variant}"`;
    this.ctx.progress.note(
      `the lab settled before ${where}: waited ${formatDuration(waitedMs)} for every backend instance to be ready`,
    );
    return waitedMs;
  }

  /** Waits `ms`, or less when the run is aborted or has failed (then throws). */
  /**
   * A rogue client during a phase: `probe.calls` calls spread over `durationMs`, one at a time, each
   * bounded; `stop` ends them at the phase's end (or an abort), and `tally` says what they got.
   */
  private rogueCalls(probe: RogueProbe, durationMs: number): { stop(): void; tally: Promise<RogueTally> } {
    const stopped = new AbortController();
    const call = this.target.rogueCall?.bind(this.target);
    const gapMs = durationMs / probe.calls;
    const tally = (async (): Promise<RogueTally> => {
      const refused: Record<string, number> = {};
      const failed: Record<string, number> = {};
      let calls = 0;
      let served = 0;
      for (let i = 0; i < probe.calls && call && !stopped.signal.aborted; i++) {
        const began = this.clock.now();
        const signal = AbortSignal.any([stopped.signal, AbortSignal.timeout(ROGUE_CALL_TIMEOUT_MS)]);
        const answer = await call(probe.service, ROGUE_PATHS[probe.service], signal).catch(
          (err: unknown): RogueAnswer => ({ status: null, reason: (err as Error).message }),
        );
        if (stopped.signal.aborted && answer.status === null) break;
        calls++;
        if (answer.status === null)
          failed[answer.reason ?? 'no answer'] = (failed[answer.reason ?? 'no answer'] ?? 0) + 1;
        else if (answer.status === 401 || answer.status === 403) {
          const why = answer.reason ?? String(answer.status);
          refused[why] = (refused[why] ?? 0) + 1;
        } else served++;
        const next = began + gapMs;
        const pause = next - this.clock.now();
        if (pause > 0) await this.clock.sleep(pause, stopped.signal).catch(() => undefined);
      }
      return { service: probe.service, calls, served, refused, failed };
    })();
    return { stop: () => stopped.abort(), tally };
  }

  private async wait(ms: number): Promise<void> {
    const signal = AbortSignal.any([this.ctx.signal, this.failed.signal]);
    try {
      await this.clock.sleep(ms, signal);
    } catch {
      this.checkpoint();
      throw new Abort('aborted');
    }
  }

  /** Like `wait`, but returns early, without throwing, as soon as `woken` aborts. */
  private async waitOrWake(ms: number, woken: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([this.ctx.signal, this.failed.signal, woken]);
    try {
      await this.clock.sleep(ms, signal);
    } catch {
      this.checkpoint();
      if (woken.aborted) return;
      throw new Abort('aborted');
    }
  }

  /**
   * `step`, or an early throw when the run is aborted or fails meanwhile: a call hanging on the lab must
   * not keep Ctrl-C from reaching the rollback (which then waits for the lock, within its bound).
   */
  private interruptible<T>(step: Promise<T>): Promise<T> {
    const signal = AbortSignal.any([this.ctx.signal, this.failed.signal]);
    step.catch(() => {});
    if (signal.aborted) this.checkpointOrAbort();
    let onAbort: (() => void) | undefined;
    const interrupted = new Promise<never>((_, reject) => {
      onAbort = () => {
        try {
          this.checkpoint();
        } catch (err) {
          reject(err);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([step, interrupted]).finally(() => {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    });
  }

  private checkpointOrAbort(): never {
    this.checkpoint();
    throw new Abort('aborted');
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  /** The services' counters; the fault proxies' beside them (`proxyCounters`), where the target counts them. */
  private async readCounters(): Promise<Readonly<Record<BackendName, ServiceCounters>>> {
    const [services, proxies] = await Promise.all([this.target.counters(), this.target.proxyRestarts?.()]);
    this.proxyCounters = proxies;
    return services;
  }

  /**
   * Leases an instance or a fault proxy had lost (its process restarted) and the renewal put back: in the
   * current phase's record and the journal. A fault proxy's are warned of too: an instance that crashes
   * is what some experiments do (and its restarts are counted), a proxy that crashes is not.
   */
  private reapplied(state: VariantState, back: readonly AppliedFault[]): void {
    const record = state.records.at(-1);
    if (!record) return;
    const at = new Date(this.clock.now()).toISOString();
    const leases = back.map((a) => ({ instance: a.instance, injector: a.injector, id: a.id }));
    record.reapplied.push(...leases.map((l) => ({ ...l, at })));
    this.emit({ type: 'fault-reapplied', variant: state.variant.name, phase: record.name, leases });
    const proxied = leases.filter((l) => l.injector === 'fault-proxy');
    for (const instance of [...new Set(proxied.map((l) => l.instance))]) {
      const ids = proxied.filter((l) => l.instance === instance).map((l) => l.id);
      this.warn(
        `${instance}'s fault proxy had lost ${ids.join(', ')} (its process restarted): the lease renewal put ${ids.length === 1 ? 'it' : 'them'} back`,
      );
    }
  }

  /**
   * Renews the variant's settings lease and the current phase's fault leases every renewEveryMs. Two
   * failures in a row fail the run: a third would come after the leases ran out, and the phase would be
   * measured without its fault.
   */
  private keepLeases(state: VariantState, settingsId: string | undefined): { stop(): void } {
    const stopped = new AbortController();
    const loop = (async () => {
      let failures = 0;
      while (!stopped.signal.aborted) {
        try {
          await this.clock.sleep(this.timing.renewEveryMs, stopped.signal);
        } catch {
          return;
        }
        try {
          await this.exclusive(async () => {
            if (stopped.signal.aborted) return;
            if (settingsId !== undefined && state.settingsApplied) {
              await this.faults.applySettings(state.variant.settings, this.timing.leaseMs, settingsId);
            }
            const applied = this.active.flatMap((a) => a.applied);
            if (applied.length > 0) {
              const back = await this.faults.renew(applied, this.timing.leaseMs);
              this.emit({
                type: 'fault-renewed',
                variant: state.variant.name,
                ids: idsOf(applied),
                leaseMs: this.timing.leaseMs,
              });
              if (back.length > 0) this.reapplied(state, back);
            }
          });
          failures = 0;
        } catch (err) {
          failures++;
          this.warn(`renewing the leases failed (${failures} in a row): ${messageOf(err)}`);
          if (failures >= 2) {
            this.fail(
              new Error(
                `the leases could not be renewed twice in a row (last: ${messageOf(err)}); they would expire mid-phase`,
              ),
            );
            return;
          }
        }
      }
    })();
    void loop;
    return {
      // Not awaited: a renewal hanging on an unreachable lab must not hold up the rollback. The lock and
      // the check inside it make sure no renewal starts after this.
      stop: () => stopped.abort(),
    };
  }

  // -------------------------------------------------------------------------------------------------------
  // Rollback, audit, release

  /** Undoes whatever is applied; never throws; returns what could not be done. */
  private async rollback(): Promise<string[]> {
    const problems: string[] = [];
    const state = this.current;
    // The keeper of this variant is stopped by runVariant's finally before control gets here. An
    // injection may still be in flight (the abort does not wait for it): the faults to remove are read
    // inside the lock, after it.
    if (this.active.length > 0 || this.current?.records.at(-1)?.partial) {
      const what = this.active.map((f) => describeFault(f.fault)).join(', ') || 'the faults of the phase';
      this.ctx.progress.note(`rollback: removing ${what}`);
      try {
        await this.bounded(
          this.exclusive(async () => {
            const faults = [...this.active];
            if (faults.length === 0) return;
            await this.faults.remove(faults.flatMap((f) => f.applied));
            this.forget(faults, 'rollback');
          }),
          `removing ${what}`,
        );
      } catch (err) {
        problems.push(messageOf(err));
        this.ctx.progress.note(`rollback: ${messageOf(err)}; clearing every fault of the lab instead`);
        try {
          // Outside the lock on purpose: the lock may be held by the very call that hangs.
          await this.bounded(this.faults.clearAll(), 'clearing every fault of the lab');
          this.forget([...this.active], 'rollback');
          this.settingsCleared(state);
        } catch (clearError) {
          problems.push(
            `${messageOf(clearError)}; the leases expire within ${formatDuration(this.timing.leaseMs)}`,
          );
        }
      }
    }
    if (this.partialInjection) {
      this.ctx.progress.note('rollback: an injection failed half-way; clearing every fault of the lab');
      try {
        await this.bounded(this.faults.clearAll(), 'clearing every fault of the lab');
        this.settingsCleared(state);
      } catch (err) {
        problems.push(`${messageOf(err)}; the leases expire within ${formatDuration(this.timing.leaseMs)}`);
      }
    }
    if (state?.settingsApplied) {
      try {
        await this.bounded(
          this.exclusive(() => this.faults.clearSettings()),
          'clearing the variant settings',
        );
        this.settingsCleared(state);
      } catch (err) {
        problems.push(
          `${messageOf(err)}; the settings lease expires within ${formatDuration(this.timing.leaseMs)}`,
        );
      }
    }
    if (state && !state.finished) {
      const cut = state.records.at(-1);
      if (cut?.partial) {
        this.emit({
          type: 'phase-finished',
          variant: state.variant.name,
          phase: cut.name,
          partial: true,
          services: cut.services,
        });
      }
      let summary: LoadSummary | undefined;
      if (state.generator) {
        try {
          summary = await this.bounded(state.generator.stop({ drain: false }), 'stopping the load');
        } catch (err) {
          problems.push(messageOf(err));
        }
      }
      this.finishVariant(state, summary);
    }
    for (const problem of problems) this.warn(`rollback: ${problem}`);
    return problems;
  }

  /** clearAll removes the settings override too. */
  private settingsCleared(state: VariantState | undefined): void {
    if (!state?.settingsApplied) return;
    state.settingsApplied = false;
    this.emit({ type: 'settings-cleared', variant: state.variant.name });
  }

  /** What is left in the lab; `null` when that is unknown (the audit could not be done), never `[]`. */
  private async audit(): Promise<{ leftoverFaults: LeftoverFault[] | null; auditError?: string }> {
    if (this.labLost) {
      // Its processes are gone with it: asking them again for seconds would only delay the end.
      const auditError = `not audited: ${this.labLost}`;
      this.emit({ type: 'audit', leftoverFaults: null, error: auditError });
      this.warn(`the audit was not done: ${this.labLost}`);
      return { leftoverFaults: null, auditError };
    }
    if (!this.info) {
      const auditError = 'not audited: the lab never became ready, and nothing was injected';
      this.emit({ type: 'audit', leftoverFaults: null, error: auditError });
      return { leftoverFaults: null, auditError };
    }
    try {
      const leftoverFaults = await this.bounded(this.faults.audit(), 'auditing the lab');
      this.emit({ type: 'audit', leftoverFaults });
      if (leftoverFaults.length > 0) {
        this.warn(
          `still active after the run: ${leftoverFaults.map((l) => `${l.kind} ${l.id} on ${l.instance}`).join(', ')}`,
        );
      }
      return { leftoverFaults };
    } catch (err) {
      const auditError = messageOf(err);
      this.emit({ type: 'audit', leftoverFaults: null, error: auditError });
      this.warn(`the audit failed: ${auditError}`);
      return { leftoverFaults: null, auditError };
    }
  }

  private async release(): Promise<string | undefined> {
    try {
      await this.bounded(this.target.release(), 'releasing the lab');
      return undefined;
    } catch (err) {
      this.warn(`release: ${messageOf(err)}`);
      return `release: ${messageOf(err)}`;
    }
  }

  private bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    const ms = this.timing.rollbackTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${formatDuration(ms)}`)), ms);
    });
    promise.catch(() => {});
    return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
  }

  private abortMessage(): string {
    const reason = this.ctx.signal.reason;
    const by = typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : 'abort';
    const state = this.current;
    const phase = state?.records.at(-1);
    const where = !this.info
      ? 'while preparing the lab'
      : phase && !state?.finished
        ? `during phase "${phase.name}"${this.experiment.variants.length > 1 ? ` of variant "${state?.variant.name}"` : ''}`
        : state && !state.finished
          ? `during the warm-up of variant "${state.variant.name}"`
          : 'between steps';
    return `interrupted by ${by} ${where}`;
  }

  // -------------------------------------------------------------------------------------------------------
  // Result

  private async finish(
    status: RunStatus,
    error: string | undefined,
    leftoverFaults: LeftoverFault[] | null,
    auditError: string | undefined,
    rollbackProblems: string[],
  ): Promise<RunOutcome> {
    const claims = evaluateClaims(this.experiment, this.runs, status);
    for (const claim of claims) this.emit({ type: 'claim', ...claim });
    const generator = generatorHealth(this.runs);
    const result: RunResult = {
      experiment: {
        name: this.experiment.name,
        description: this.experiment.description,
        file: this.experiment.file,
      },
      target: this.target.name,
      driver: this.ctx.driver?.name ?? 'builtin',
      ...(this.ctx.driver?.name === 'k6' && this.ctx.driver.version
        ? { k6Version: this.ctx.driver.version }
        : {}),
      runId: path.basename(this.dir),
      status,
      ...(error !== undefined ? { error } : {}),
      startedAt: new Date(this.startedAt).toISOString(),
      finishedAt: new Date(this.clock.now()).toISOString(),
      leftoverFaults,
      ...(auditError !== undefined ? { auditError } : {}),
      ...(rollbackProblems.length > 0 ? { rollbackProblems } : {}),
      load: loadOf(this.experiment),
      generator,
      runs: this.runs,
      calibration: this.calibration,
      claims,
      ...verdictOf(status, generator, claims),
    };
    const resultFile = writeResult(this.dir, result);
    const report = await this.writeReport(result);
    const exitCode = exitCodeOf(result);
    this.emit({
      type: 'run-finished',
      status,
      verdict: result.verdict,
      ...(result.verdictReason !== undefined ? { verdictReason: result.verdictReason } : {}),
      ...(error !== undefined ? { error } : {}),
      exitCode,
    });
    const journal = this.journal?.file ?? '';
    this.journal?.close();
    return { result, dir: this.dir, files: { journal, result: resultFile, report }, exitCode };
  }

  private async writeReport(result: RunResult): Promise<string | null> {
    if (this.ctx.renderReport === null) return null;
    try {
      const render = this.ctx.renderReport ?? (await import('../report/report.ts')).renderReport;
      const file = path.join(this.dir, 'report.html');
      writeFileSync(file, render(result));
      return file;
    } catch (err) {
      this.warn(`report.html not written: ${messageOf(err)}`);
      return null;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

/** A phase's service figures with its rogue calls' share served, for claims on rogueServed. */
function withRogue(
  services: Partial<Record<BackendName, ServiceCounters>>,
  rogue: RogueTally | undefined,
): Partial<Record<BackendName, ServiceCounters>> {
  if (!rogue || rogue.calls === 0) return services;
  const counted = services[rogue.service] ?? { restarts: 0, panicsRecovered: 0 };
  return { ...services, [rogue.service]: { ...counted, rogueServed: rogue.served / rogue.calls } };
}

/** The path a rogue client asks of a backend: a real one (the first video's, or its uploader's). */
const ROGUE_PATHS: Readonly<Record<BackendName, string>> = {
  account: '/accounts/1',
  archive: '/archives/1',
  vip: '/vips/1',
  like: '/likes/1',
  coin: '/coins/1',
};

/** Bound on one rogue call: a backend that does not answer is counted as such. */
const ROGUE_CALL_TIMEOUT_MS = 2_000;

function countersDelta(
  before: Readonly<Record<BackendName, ServiceCounters>>,
  after: Readonly<Record<BackendName, ServiceCounters>>,
): Partial<Record<BackendName, ServiceCounters>> {
  const delta: Partial<Record<BackendName, ServiceCounters>> = {};
  for (const service of BACKENDS) {
    const a = after[service];
    if (!a) continue;
    const b = before[service] ?? { restarts: 0, panicsRecovered: 0 };
    delta[service] = {
      restarts: Math.max(0, a.restarts - b.restarts),
      panicsRecovered: Math.max(0, a.panicsRecovered - b.panicsRecovered),
    };
  }
  return delta;
}

/** Lease ids, once each (a fault has the same id on every instance). */
function idsOf(applied: readonly AppliedFault[]): string[] {
  return [...new Set(applied.map((a) => a.id))];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
