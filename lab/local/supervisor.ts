/**
 * The local lab's kubelet: keeps every instance running as a child process, restarts a
 * crashed one with a growing back-off (CrashLoopBackOff), counts restarts and remembers
 * how each one last exited, and probes `/readyz` to keep a ready flag per instance — often
 * while it is not ready, so that a start or a restart is seen at once, and seldom once it is
 * (an exit needs no probe: the child's 'exit' event tells).
 *
 * One process may host several named members (the fault proxies' host): each is a row of the
 * status with its own readiness, and they share the process's pid, state and restarts.
 *
 * Spawning, probing, the clock and the timers are injected, so the back-off sequence can
 * be checked in a unit test without a process or a sleep.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import { PLATFORM_PATHS } from '../../services/names.ts';
import { type BackoffPolicy, CrashLoop, LAB_BACKOFF } from '../backoff.ts';

/** One named part of a process that hosts several, with a readiness of its own. */
export interface MemberSpec {
  /** `coin-1-proxy`… */
  readonly id: string;
  readonly service: string;
  /** Base URL; readiness is `GET <url>/readyz`. */
  readonly url: string;
}

interface ProcessSpec {
  /** `account-1`, `gateway-naive`, `fault-proxies`… */
  readonly id: string;
  readonly service: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where the instance's stdout and stderr go (appended across restarts). */
  readonly logFile: string;
}

/**
 * A process to keep running: one instance with its readiness URL, or a host of several members
 * (each with its own), which the status lists in its place, one row each.
 */
export type InstanceSpec = ProcessSpec &
  (
    | {
        /** Base URL; readiness is `GET <url>/readyz`. */
        readonly url: string;
        readonly members?: undefined;
      }
    | {
        readonly url?: undefined;
        readonly members: readonly MemberSpec[];
      }
  );

/** What the supervisor needs of a child process (a ChildProcess, or a fake in tests). */
export interface ChildHandle {
  readonly pid?: number | undefined;
  kill(signal: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ExitRecord {
  readonly code: number | null;
  readonly signal: string | null;
  /** ISO time of the exit. */
  readonly at: string;
}

export type InstanceState = 'running' | 'backoff' | 'stopped';

/**
 * One row of the status: an instance, or a member of a host, which shows its own readiness and
 * its host's pid, state, restarts and last exit.
 */
export interface InstanceStatus {
  readonly id: string;
  readonly service: string;
  readonly url: string;
  readonly pid: number | null;
  readonly state: InstanceState;
  readonly ready: boolean;
  readonly restarts: number;
  readonly lastExit: ExitRecord | null;
  /** ISO time of the next start while backing off, else null. */
  readonly nextStartAt: string | null;
}

/** `id` is the process's (a host's own id for a host), but a member's in a 'ready' event. */
export type SupervisorEvent =
  | { readonly type: 'start'; readonly id: string; readonly pid: number | null; readonly restarts: number }
  | {
      readonly type: 'exit';
      readonly id: string;
      readonly code: number | null;
      readonly signal: string | null;
      readonly ranMs: number;
      /** Delay before the restart; null while stopping. */
      readonly restartInMs: number | null;
    }
  | { readonly type: 'ready'; readonly id: string; readonly ready: boolean }
  | { readonly type: 'spawn-error'; readonly id: string; readonly message: string };

export interface SupervisorOptions {
  readonly instances: readonly InstanceSpec[];
  /** @default LAB_BACKOFF (250 ms doubling to 8 s, reset after 15 s) */
  readonly backoff?: BackoffPolicy;
  /**
   * Time from one readiness probe's answer to the next while an instance (or member) is not
   * ready: starting, restarted, or answering 503. Short, so that `up` and a restart are seen
   * without delay. @default 100
   */
  readonly probeIntervalMs?: number;
  /**
   * The same once it is ready: a ready instance that stops answering is rare (its exit is seen
   * at once through the child's 'exit' event), so it is only checked now and then. @default 5000
   */
  readonly readyProbeIntervalMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping. @default 5000 */
  readonly stopGraceMs?: number;
  /** @default Date.now */
  readonly clock?: () => number;
  /** @default the global setTimeout / clearTimeout */
  readonly timers?: Timers;
  /** @default spawnInstance */
  readonly launch?: (spec: InstanceSpec) => ChildHandle;
  /** @default probeReady (GET /readyz answers 200) */
  readonly probe?: (url: string) => Promise<boolean>;
  readonly onEvent?: (event: SupervisorEvent) => void;
}

export type KillResult = 'killed' | 'not-running' | 'unknown';

export type ReadyResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'timeout' | 'aborted' | 'stopped'; readonly notReady: string[] };

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Starts an instance with its output appended to its log file and an IPC channel: when the
 * supervisor dies, even by SIGKILL, the channel closes and the instance stops itself
 * (services/main.ts listens for 'disconnect'). Its own process group keeps a Ctrl-C in the
 * terminal for the supervisor, which then stops the instances in order.
 */
/**
 * How much less CPU priority lab processes get than the rest of the machine. The load
 * generator is the instrument: on two cores, an instance starting (tsx compiling it) would
 * otherwise starve it and make it send late, and a run without a steady instrument has no
 * verdict. The lab's processes stay equal among themselves.
 */
export const LAB_NICENESS = 5;

export function spawnInstance(spec: InstanceSpec): ChildProcess {
  const fd = openSync(spec.logFile, 'a', 0o600);
  try {
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', fd, fd, 'ipc'],
      detached: true,
    });
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, Math.min(19, getPriority() + LAB_NICENESS));
      } catch {
        // Not allowed here (some containers): the lab runs at the normal priority.
      }
    }
    return child;
  } finally {
    closeSync(fd);
  }
}

/**
 * One readiness probe: 200 from `/readyz` within a second. A plain request on a connection of its
 * own: fetch cost the supervisor several times more, and a connection kept for the next probe
 * (5 s later) would meet the server's keep-alive timeout (5 s) closing it.
 */
export function probeReady(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(`${url}${PLATFORM_PATHS.ready}`, { agent: false, timeout: 1_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200));
      res.once('error', () => resolve(false));
    });
    req.once('timeout', () => req.destroy(new Error('readiness probe timed out')));
    req.once('error', () => resolve(false));
  });
}

/** A row of the status: an instance, or one member of a host. */
interface Part {
  readonly spec: MemberSpec;
  ready: boolean;
  /** The next probe of the running child, if any. */
  probeTimer: unknown;
}

/** One process and its parts (itself alone, or its members). */
interface Slot {
  readonly spec: InstanceSpec;
  readonly parts: readonly Part[];
  readonly crashLoop: CrashLoop;
  child: ChildHandle | undefined;
  pid: number | null;
  state: InstanceState;
  startedAt: number;
  restarts: number;
  lastExit: ExitRecord | null;
  nextStartAt: number | null;
  restartTimer: unknown;
  /** Resolves when the current child has exited. */
  exited: Promise<void>;
  markExited: () => void;
}

export class Supervisor {
  readonly #slots: Slot[];
  /** By process id and by part id. */
  readonly #byId = new Map<string, Slot>();
  readonly #probeIntervalMs: number;
  readonly #readyProbeIntervalMs: number;
  readonly #stopGraceMs: number;
  readonly #clock: () => number;
  readonly #timers: Timers;
  readonly #launch: (spec: InstanceSpec) => ChildHandle;
  readonly #probe: (url: string) => Promise<boolean>;
  readonly #onEvent: (event: SupervisorEvent) => void;
  #started = false;
  #halted = false;
  #stopping: Promise<void> | undefined;

  constructor(options: SupervisorOptions) {
    const policy = options.backoff ?? LAB_BACKOFF;
    this.#probeIntervalMs = options.probeIntervalMs ?? 100;
    this.#readyProbeIntervalMs = options.readyProbeIntervalMs ?? 5_000;
    this.#stopGraceMs = options.stopGraceMs ?? 5_000;
    this.#clock = options.clock ?? Date.now;
    this.#timers = options.timers ?? realTimers;
    this.#launch = options.launch ?? spawnInstance;
    this.#probe = options.probe ?? probeReady;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#slots = options.instances.map((spec) => {
      const members = spec.members ?? [{ id: spec.id, service: spec.service, url: spec.url }];
      if (members.length === 0) throw new Error(`${spec.id} has no members`);
      const slot: Slot = {
        spec,
        parts: members.map((member) => ({ spec: member, ready: false, probeTimer: undefined })),
        crashLoop: new CrashLoop(policy),
        child: undefined,
        pid: null,
        state: 'stopped',
        startedAt: 0,
        restarts: 0,
        lastExit: null,
        nextStartAt: null,
        restartTimer: undefined,
        exited: Promise.resolve(),
        markExited: () => {},
      };
      for (const id of new Set([spec.id, ...members.map((m) => m.id)])) {
        if (this.#byId.has(id)) throw new Error(`duplicate instance id ${id}`);
        this.#byId.set(id, slot);
      }
      return slot;
    });
  }

  /** Every row of the status, in order: instances, and each host's members in its place. */
  #parts(): { slot: Slot; part: Part }[] {
    return this.#slots.flatMap((slot) => slot.parts.map((part) => ({ slot, part })));
  }

  /** Starts every instance, each with its readiness probes. */
  start(): void {
    if (this.#started) throw new Error('supervisor already started');
    this.#started = true;
    for (const slot of this.#slots) this.#run(slot);
  }

  /** One row per instance, and per member of a host (in the host's place). */
  status(): InstanceStatus[] {
    return this.#parts().map(({ slot, part }) => ({
      id: part.spec.id,
      service: part.spec.service,
      url: part.spec.url,
      pid: slot.pid,
      state: slot.state,
      ready: part.ready,
      restarts: slot.restarts,
      lastExit: slot.lastExit,
      nextStartAt: slot.nextStartAt === null ? null : new Date(slot.nextStartAt).toISOString(),
    }));
  }

  /** The ids of the status' rows. */
  ids(): string[] {
    return this.#parts().map(({ part }) => part.spec.id);
  }

  /**
   * SIGKILL one instance (it is restarted like any crash). A member's id (or its host's) kills
   * the host's process: every member goes down and comes back with it, and the restarts of
   * each of them go up by one.
   */
  kill(id: string): KillResult {
    const slot = this.#byId.get(id);
    if (!slot) return 'unknown';
    if (!slot.child || this.#halted) return 'not-running';
    slot.child.kill('SIGKILL');
    return 'killed';
  }

  /**
   * Resolves once every instance and member is ready, or with the ones that are not when the
   * timeout runs out, the signal aborts, or the supervisor stops.
   */
  whenReady(options: {
    timeoutMs: number;
    signal?: AbortSignal;
    onProgress?: (ready: number, total: number, waitingFor: string[]) => void;
  }): Promise<ReadyResult> {
    const deadline = this.#clock() + options.timeoutMs;
    let lastReported = -1;
    return new Promise((resolve) => {
      const check = () => {
        const parts = this.#parts();
        const waitingFor = parts.filter(({ part }) => !part.ready).map(({ part }) => part.spec.id);
        const ready = parts.length - waitingFor.length;
        if (ready !== lastReported) {
          lastReported = ready;
          options.onProgress?.(ready, parts.length, waitingFor);
        }
        if (waitingFor.length === 0) return resolve({ ok: true });
        if (this.#halted) return resolve({ ok: false, reason: 'stopped', notReady: waitingFor });
        if (options.signal?.aborted) return resolve({ ok: false, reason: 'aborted', notReady: waitingFor });
        if (this.#clock() >= deadline) return resolve({ ok: false, reason: 'timeout', notReady: waitingFor });
        this.#timers.setTimeout(check, 100);
      };
      check();
    });
  }

  /**
   * Stops every instance: no more restarts, SIGTERM, then SIGKILL for any still running after
   * the grace period. Resolves when every child has exited. Idempotent.
   */
  stop(): Promise<void> {
    if (!this.#stopping) {
      // Set before any child is signalled: a child may exit before stopAll's promise exists.
      this.#halted = true;
      this.#stopping = this.#stopAll();
    }
    return this.#stopping;
  }

  async #stopAll(): Promise<void> {
    for (const slot of this.#slots) {
      this.#cancelProbes(slot);
      this.#timers.clearTimeout(slot.restartTimer);
      slot.nextStartAt = null;
      if (slot.state === 'backoff') slot.state = 'stopped';
    }
    const running = this.#slots.filter((s) => s.child);
    for (const slot of running) slot.child?.kill('SIGTERM');
    const allExited = Promise.all(running.map((s) => s.exited)).then(() => true);
    if (await this.#within(allExited, this.#stopGraceMs)) return;
    for (const slot of running) slot.child?.kill('SIGKILL');
    // SIGKILL cannot be refused; the bound only guards against a lost 'exit' event.
    await this.#within(allExited, 2_000);
  }

  #within(done: Promise<boolean>, ms: number): Promise<boolean> {
    let timer: unknown;
    const late = new Promise<boolean>((resolve) => {
      timer = this.#timers.setTimeout(() => resolve(false), ms);
    });
    return Promise.race([done, late]).finally(() => this.#timers.clearTimeout(timer));
  }

  #run(slot: Slot): void {
    slot.nextStartAt = null;
    slot.restartTimer = undefined;
    slot.exited = new Promise((resolve) => {
      slot.markExited = resolve;
    });
    slot.startedAt = this.#clock();
    slot.state = 'running';
    for (const part of slot.parts) this.#setReady(part, false);
    let child: ChildHandle;
    try {
      child = this.#launch(slot.spec);
    } catch (err) {
      this.#onEvent({ type: 'spawn-error', id: slot.spec.id, message: (err as Error).message });
      this.#exited(slot, null, null);
      return;
    }
    slot.child = child;
    slot.pid = child.pid ?? null;
    let done = false;
    const onExit = (code: number | null, signal: string | null) => {
      if (done) return;
      done = true;
      this.#exited(slot, code, signal);
    };
    child.once('exit', onExit);
    // spawn failures (ENOENT, EACCES) arrive as 'error', sometimes without an 'exit'.
    child.on('error', (err) => {
      if (child.pid !== undefined) return; // it was spawned: an IPC hiccup, not a failed spawn
      this.#onEvent({ type: 'spawn-error', id: slot.spec.id, message: err.message });
      onExit(null, null);
    });
    this.#onEvent({ type: 'start', id: slot.spec.id, pid: slot.pid, restarts: slot.restarts });
    for (const part of slot.parts) this.#scheduleProbe(slot, part, child);
  }

  #exited(slot: Slot, code: number | null, signal: string | null): void {
    const now = this.#clock();
    const ranMs = now - slot.startedAt;
    slot.child = undefined;
    slot.pid = null;
    slot.lastExit = { code, signal, at: new Date(now).toISOString() };
    this.#cancelProbes(slot);
    for (const part of slot.parts) this.#setReady(part, false);
    slot.markExited();
    if (this.#halted) {
      slot.state = 'stopped';
      this.#onEvent({ type: 'exit', id: slot.spec.id, code, signal, ranMs, restartInMs: null });
      return;
    }
    const delay = slot.crashLoop.next(ranMs);
    slot.state = 'backoff';
    slot.nextStartAt = now + delay;
    this.#onEvent({ type: 'exit', id: slot.spec.id, code, signal, ranMs, restartInMs: delay });
    slot.restartTimer = this.#timers.setTimeout(() => {
      if (this.#halted) return;
      slot.restarts += 1;
      this.#run(slot);
    }, delay);
  }

  #setReady(part: Part, ready: boolean): void {
    if (part.ready === ready) return;
    part.ready = ready;
    this.#onEvent({ type: 'ready', id: part.spec.id, ready });
  }

  /** The next probe of one part of `child`: soon while it is not ready, in a while once it is. */
  #scheduleProbe(slot: Slot, part: Part, child: ChildHandle): void {
    const ms = part.ready ? this.#readyProbeIntervalMs : this.#probeIntervalMs;
    part.probeTimer = this.#timers.setTimeout(() => this.#probeOne(slot, part, child), ms);
  }

  #cancelProbes(slot: Slot): void {
    for (const part of slot.parts) {
      this.#timers.clearTimeout(part.probeTimer);
      part.probeTimer = undefined;
    }
  }

  #probeOne(slot: Slot, part: Part, child: ChildHandle): void {
    part.probeTimer = undefined;
    if (slot.child !== child || this.#halted) return;
    void this.#probe(part.spec.url)
      .catch(() => false)
      .then((ready) => {
        // A probe answered by a process that has since exited says nothing about its successor,
        // whose own probes are already scheduled.
        if (slot.child !== child || this.#halted) return;
        this.#setReady(part, ready);
        this.#scheduleProbe(slot, part, child);
      });
  }
}
