/**
 * What the runner needs from the place an experiment runs: the local lab or a Kubernetes cluster. A
 * target resolves the instances a fault acts on, chooses the injector of each kind, reads counters,
 * and prepares and releases the lab; the runner does everything else with faults once, for every
 * target (faults.ts: all-or-nothing injection, renewal, removal, audit, clear), so the lifecycle and
 * its rollback are the same everywhere and can be tested against an in-memory fake (fake-target.ts).
 */
import type { TrustMode } from '../../services/lib/trust.ts';
import type { BackendName, Strategy } from '../../services/topology.ts';
import type { FaultInjector } from '../faults/injector.ts';
import type { AgentInjector } from '../faults/injectors/agent.ts';
import type { InjectorName } from '../faults/kind.ts';
import type { AnyFault, FaultKind } from '../faults/registry.ts';

export type { AppliedFault, LeftoverFault } from '../faults/injector.ts';
/** Which mechanism applied a fault: results say it, so a surprising number can be traced to its cause. */
export type Injector = InjectorName;

/** Where a lab runs, as `--target` names it (lab-driver.ts registers each): `local`, `kind`. */
export type TargetName = string;

export interface TargetInfo {
  readonly name: TargetName;
  /** Base URL of each gateway, e.g. `http://127.0.0.1:18080`. */
  readonly gateways: Readonly<Record<Strategy, string>>;
  /** The lab's own worker-recovery setting, where the target knows it. */
  readonly workerRecovery?: boolean;
  /** The lab's own trust mode (`up --trust`), where the target knows it. */
  readonly trust?: TrustMode;
}

export interface ServiceCounters {
  readonly restarts: number;
  readonly panicsRecovered: number;
  /** Share of the phase's rogue calls to the service it served (phases with a `rogue` only). */
  readonly rogueServed?: number;
}

/** A fault proxy's restarts, and when it last exited. */
export interface ProxyCounters {
  readonly restarts: number;
  /** ISO time of its last exit; null if it never exited. */
  readonly lastExitAt: string | null;
}

/** What one rogue call got: the answer's status and reason, or no answer (`status: null`) and why. */
export interface RogueAnswer {
  readonly status: number | null;
  /** The error's reason (TRUST_MISSING…) when the answer is one, or the failure without an answer. */
  readonly reason?: string;
}

/** An instance faults can be put on: a backend's or a gateway's (`service: 'gateway'`). */
export interface TargetInstance {
  /** `coin-1`, or the pod's name on Kubernetes. */
  readonly id: string;
  readonly service: BackendName | 'gateway';
}

export interface PrepareOptions {
  /**
   * Whether a lab that is not running may be started (a run: yes; `chaos-lab fault`: no, it acts on
   * the lab that runs and says so when there is none). @default true
   */
  readonly start?: boolean;
}

/** The run that holds a lab: one lab runs one experiment at a time. */
export interface RunHolder {
  readonly pid: number;
  readonly experiment: string;
  /** ISO time. */
  readonly startedAt: string;
  /** The machine it runs on, where runs from several machines share a lab (Kubernetes). */
  readonly host?: string;
}

/** `a run of tour (pid 4242, since 10:31:07, 42 s ago)`; `(pid 4242 on laptop-7, …)` when it names its host. */
export function describeHolder(holder: RunHolder, now = Date.now()): string {
  const started = new Date(holder.startedAt);
  const since = Number.isNaN(started.getTime())
    ? holder.startedAt
    : `since ${started.toTimeString().slice(0, 8)}, ${Math.max(0, Math.round((now - started.getTime()) / 1000))} s ago`;
  return `a run of ${holder.experiment} (pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''}, ${since})`;
}

/** A second run on a lab that one already holds: refused before anything starts. */
export class LabBusyError extends Error {
  override readonly name = 'LabBusyError';
  constructor(readonly holder: RunHolder) {
    super(
      `the lab is busy: ${describeHolder(holder)} holds it; one lab runs one experiment at a time, and nothing was started — wait for that run to end, or stop it (Ctrl-C in its terminal, or kill ${holder.pid}${holder.host ? ` on ${holder.host}` : ''})`,
    );
  }
}

export interface Target {
  readonly name: TargetName;
  /**
   * Refusal before anything starts: why this target cannot inject a fault of `kind`, or this fault
   * (with the injector it asked for and its parameters): it has none of the kind's injectors, or not
   * the one asked for (`unsupportedBy`). Must not touch the lab.
   */
  unsupported(fault: FaultKind | AnyFault): string | undefined;
  /**
   * Refusal before anything starts that needs to look at the lab: of the injectors asked for by name
   * (`injector: netem`), those that cannot work there, each with why (the kind target runs the
   * doctor's netem probe: a node kernel without sch_netem). Changes nothing in the lab.
   */
  refusedInjectors?(
    asked: readonly InjectorName[],
    signal: AbortSignal,
  ): Promise<Partial<Record<InjectorName, string>>>;
  /**
   * Takes the lab for one run, before anything starts; throws LabBusyError naming the run that holds
   * it. Released by the run at its end (a run killed without a chance to release leaves a lock that
   * the next run takes over once its process is gone — locally — or its Lease has expired — on
   * Kubernetes). Absent: the target does not lock.
   */
  holdLab?(holder: RunHolder): Promise<{ release(): Promise<void> }>;
  /** The run holding the lab now, if any (`fault add` warns that it will interfere). */
  labHolder?(): Promise<RunHolder | undefined>;
  /** Makes sure the lab is up (starting it if needed and allowed, remembering that it did), returns the gateway URLs. */
  prepare(
    progress: (line: string) => void,
    signal: AbortSignal,
    options?: PrepareOptions,
  ): Promise<TargetInfo>;
  /**
   * Waits until every backend instance is ready again, so that a phase does not measure what an
   * earlier one broke (a pod whose process panicked with recovery off sits in CrashLoopBackOff for
   * 10 s, 20 s, 40 s …). The runner calls it before each variant and each phase; it resolves with how
   * long it waited (0 when nothing was waited for) and throws, naming what is not ready and why, when
   * the lab does not settle within the target's bound. A target without it is always settled.
   */
  settle?(progress: (line: string) => void, signal: AbortSignal): Promise<{ readonly waitedMs: number }>;
  /** The instances faults can be put on now, of `service` or all (gateways included). */
  instances(service?: BackendName | 'gateway'): Promise<readonly TargetInstance[]>;
  /**
   * The instances a fault acts on now (every instance of its service when it names none); throws,
   * naming what there is, for an instance that does not exist.
   */
  resolve(
    fault: Pick<AnyFault, 'service' | 'instances'> & { readonly kind?: FaultKind },
  ): Promise<readonly string[]>;
  /**
   * Every injector of this target. A kind is injected by the first of its injectors (the registry's
   * order) that the target has; audits and clears go to all of them.
   */
  injectors(): readonly FaultInjector[];
  /** The fault agents: variant settings go through them. */
  agents(): AgentInjector;
  /** Cumulative counters per backend service (summed over instances); the runner takes phase deltas. */
  counters(): Promise<Readonly<Record<BackendName, ServiceCounters>>>;
  /**
   * Each fault proxy's restarts since the lab started, by the instance it stands in front of (`coin-1`),
   * where the target supervises its proxies as processes of their own (the local lab); the runner takes
   * phase deltas. A proxy keeps its faults in memory: a restart loses them. Absent: not counted apart.
   */
  proxyRestarts?(): Promise<Readonly<Record<string, ProxyCounters>>>;
  /**
   * One call straight to an instance of `service` (round-robin), around the gateways and the fault
   * proxies, unsigned and in plain HTTP: what a client that got onto the network would send. A
   * target without it cannot run a phase's `rogue`.
   */
  rogueCall?(service: BackendName, path: string, signal: AbortSignal): Promise<RogueAnswer>;
  /**
   * Watches the prepared lab while a run uses it: calls `lost` once, within about a second, if the lab
   * stops (its supervisor killed, say), so that the run ends as failed at once instead of measuring a
   * lab that is gone. Returns what stops the watching. A target without it is not watched.
   */
  watch?(lost: (why: string) => void): () => void;
  /** Brings the lab down if prepare() started it, and lets go of what it opened. */
  release(): Promise<void>;
}

/** Where the CLI's `--target` leads; constructing a target must not start or touch anything. */
export interface TargetOptions {
  /** The lab home (`CHAOS_LAB_HOME`, else `<repo>/.chaos-lab`). */
  readonly home: string;
}
