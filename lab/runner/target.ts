/**
 * What the runner needs from the place an experiment runs: the local lab or a Kubernetes cluster. The
 * runner talks to a target only through this interface, so the lifecycle (and its rollback) is the same
 * everywhere and can be tested against an in-memory fake (`fake-target.ts`).
 */
import type { BackendName, Strategy } from '../../services/topology.ts';
import type { Fault } from './experiment.ts';

/**
 * Which mechanism applied a fault: results say it, so a surprising number can be traced to its cause.
 * `fault-sidecar`: on Kubernetes, the pod's sidecar SIGKILLs the service's process (kill).
 */
export type Injector = 'fault-agent' | 'fault-proxy' | 'supervisor' | 'tc-netem' | 'fault-sidecar';

export interface TargetInfo {
  readonly name: 'local' | 'kind';
  /** Base URL of each gateway, e.g. `http://127.0.0.1:18080`. */
  readonly gateways: Readonly<Record<Strategy, string>>;
}

/** One fault on one instance. */
export interface AppliedFault {
  readonly fault: Fault;
  readonly instance: string;
  readonly injector: Injector;
  /** The lease id on that instance. */
  readonly id: string;
  /** ISO time. */
  readonly injectedAt: string;
}

export interface ServiceCounters {
  readonly restarts: number;
  readonly panicsRecovered: number;
}

export interface LeftoverFault {
  readonly instance: string;
  readonly injector: Injector;
  readonly id: string;
  readonly kind: string;
}

export interface Target {
  readonly name: 'local' | 'kind';
  /**
   * Refusal before anything starts: why this target cannot inject `kind` (e.g. "the kernel has no
   * sch_netem"), or undefined when it can. Must not touch the lab.
   */
  unsupported(kind: Fault['kind']): string | undefined;
  /** Makes sure the lab is up (starting it if needed, remembering that it did), returns the gateway URLs. */
  prepare(progress: (line: string) => void, signal: AbortSignal): Promise<TargetInfo>;
  /**
   * Waits until every backend instance is ready again, so that a phase does not measure what an
   * earlier one broke (a pod whose process panicked with recovery off sits in CrashLoopBackOff for
   * 10 s, 20 s, 40 s …). The runner calls it before each variant and each phase; it resolves with how
   * long it waited (0 when nothing was waited for) and throws, naming what is not ready and why, when
   * the lab does not settle within the target's bound. A target without it is always settled.
   */
  settle?(progress: (line: string) => void, signal: AbortSignal): Promise<{ readonly waitedMs: number }>;
  /**
   * Applies variant settings (workerRecovery) as leases on every backend instance. Calling it again with
   * the same id renews the lease (the runner does so every leaseMs/3 while the variant runs).
   */
  applySettings(settings: { readonly workerRecovery?: boolean }, leaseMs: number, id: string): Promise<void>;
  clearSettings(): Promise<void>;
  /** Injects one fault on its instances (all when fault.instances is empty) as leases of leaseMs; `kill` is instantaneous. */
  inject(fault: Fault, id: string, leaseMs: number): Promise<AppliedFault[]>;
  /** Extends the leases (the runner calls it every leaseMs/3; never for `kill`). */
  renew(applied: readonly AppliedFault[], leaseMs: number): Promise<void>;
  /** Removes the leases now (the runner never passes `kill`, which has nothing to remove). */
  remove(applied: readonly AppliedFault[]): Promise<void>;
  /** Cumulative counters per backend service (summed over instances); the runner takes phase deltas. */
  counters(): Promise<Readonly<Record<BackendName, ServiceCounters>>>;
  /**
   * What the faulty instances actually did during the fault, for calibration (e.g. `{ addedLatencyMs: 401.3 }`
   * or `{ lossRate: 0.29 }`); the runner calls it right after `remove`, for latency, loss and http-error.
   * Keys that match the runner's `configured` keys (see calibration.ts) are shown side by side.
   */
  observe(applied: readonly AppliedFault[]): Promise<Readonly<Record<string, number>>>;
  /** Every fault or settings override still active anywhere in the lab. */
  audit(): Promise<LeftoverFault[]>;
  /** Removes everything the lab has, whoever applied it (last-resort rollback). */
  clearAll(): Promise<void>;
  /** Brings the lab down if prepare() started it. */
  release(): Promise<void>;
}

/** Where the CLI's `--target` leads; constructing a target must not start or touch anything. */
export interface TargetOptions {
  /** The lab home (`CHAOS_LAB_HOME`, else `<repo>/.chaos-lab`). */
  readonly home: string;
}
