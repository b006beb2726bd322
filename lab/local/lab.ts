/**
 * One local lab, from start to stop: the checks before anything starts (no other lab in
 * this home, every port free), the secrets, the state file, the supervisor and its control
 * API, the wait for readiness, and an orderly stop that leaves nothing behind. The
 * foreground `up` runs it in the CLI's own process, `up --detach` in a background one
 * (supervisor-main.ts).
 */

import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildFromEnv, ensureLabBuild, type LabBuild } from '../build/lab-build.ts';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import { type LabLive, startLabLive } from '../live/lab-live.ts';
import { tailLines } from '../log-tail.ts';
import { createLabPki } from '../pki.ts';
import { type ControlServer, type LabStatus, startControlServer } from './control-server.ts';
import { instanceSpecs, type LabConfig, type LabTrust } from './instances.ts';
import { DEFAULT_PORT_BASE, LOOPBACK, labLayout, portsOf } from './layout.ts';
import { busyPorts, ephemeralWarning } from './port-check.ts';
import { ensureHome, type LabState, logDir, lookupLab, removeState, secret, writeState } from './state.ts';
import { type ReadyResult, Supervisor, type SupervisorEvent } from './supervisor.ts';

export interface UpOptions {
  readonly home: string;
  readonly portBase: number;
  readonly trust: LabTrust;
  readonly workerRecovery: boolean;
  readonly readyTimeoutMs: number;
  readonly logLevel: string;
  /**
   * Serve the live page at base+91, run by the supervisor. @default false: a lab started for a run
   * (child-lab.ts) is watched through the run's own page.
   */
  readonly live?: boolean;
}

export const UP_DEFAULTS = {
  portBase: DEFAULT_PORT_BASE,
  trust: 'half',
  workerRecovery: true,
  readyTimeoutMs: 60_000,
  logLevel: 'info',
} as const satisfies Omit<UpOptions, 'home'>;

export interface UpHooks {
  /** A notice for the user (a stale state file removed…). */
  readonly note?: (message: string) => void;
  readonly progress?: (ready: number, total: number, waitingFor: readonly string[]) => void;
  /** The supervisor's running commentary: exits, restarts. */
  readonly log?: (line: string) => void;
  /** Aborts the start-up (Ctrl-C while waiting): everything started is stopped. */
  readonly signal?: AbortSignal;
  /** The compiled processes to run. @default the one named by CHAOS_LAB_BUILD, else built now */
  readonly build?: LabBuild;
}

export interface RunningLab {
  readonly state: LabState;
  readonly readyInMs: number;
  /** The live page, or null when it was not asked for or could not be served. */
  readonly liveUrl: string | null;
  /** Resolves once the lab has stopped, by `stop()` or by the control API's /shutdown. */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

/**
 * What must hold before a lab starts: no running lab in this home (a stale state file is
 * removed, and said so), and every port of the layout free on loopback.
 */
export async function preflight(options: Pick<UpOptions, 'home' | 'portBase'>, note: (m: string) => void) {
  const found = lookupLab(options.home);
  if (found.kind === 'running') {
    const { state } = found;
    throw new CliError(
      `a lab is already running in ${options.home} (supervisor pid ${state.pid}, started ${state.startedAt}, gateways from port ${state.portBase + 80})`,
      { hint: 'stop it with: npx chaos-lab down (or set CHAOS_LAB_HOME and --port-base for a second lab)' },
    );
  }
  if (found.kind === 'stale') {
    removeState(options.home);
    note(`removed a stale state file: its supervisor (pid ${found.state.pid}) is gone`);
  }
  const layout = labLayout(options.portBase);
  const warning = ephemeralWarning(portsOf(layout));
  if (warning) note(`warning: ${warning}`);
  const busy = await busyPorts(portsOf(layout), LOOPBACK);
  if (busy.length > 0) {
    const list = busy.map((b) => `${b.port} (${b.owner})`).join(', ');
    const suggestion = options.portBase === DEFAULT_PORT_BASE ? 19_000 : DEFAULT_PORT_BASE;
    throw new CliError(`port${busy.length > 1 ? 's' : ''} ${list} already in use on ${LOOPBACK}`, {
      hint: `choose another range with --port-base, e.g. --port-base ${suggestion}`,
    });
  }
  return layout;
}

function describeEvent(event: SupervisorEvent): string | undefined {
  switch (event.type) {
    case 'exit': {
      // Exits the stop itself caused are expected; only crashes are worth a line.
      if (event.restartInMs === null) return undefined;
      const how = event.signal ? `signal ${event.signal}` : `code ${event.code}`;
      return `${event.id} exited (${how}, ran ${formatDuration(event.ranMs)}); restart in ${formatDuration(event.restartInMs)}`;
    }
    case 'start':
      return event.restarts > 0
        ? `${event.id} restarted (restart ${event.restarts}, pid ${event.pid})`
        : undefined;
    case 'spawn-error':
      return `${event.id} could not be started: ${event.message}`;
    case 'ready':
      return undefined;
  }
}

/** The lab's compiled processes, built now when the sources changed (about a second), said on the terminal. */
export async function compiledLab(note: (message: string) => void): Promise<LabBuild> {
  try {
    const build = await ensureLabBuild({ onBuild: (why) => note(`compiling the lab's processes (${why})…`) });
    if (build.built) note(`compiled in ${(build.tookMs / 1000).toFixed(1)} s`);
    return build;
  } catch (err) {
    throw new CliError(`could not compile the lab's processes: ${(err as Error).message}`, {
      hint: 'a source file under services/ or lab/ does not compile; `npm run typecheck` says where',
    });
  }
}

export async function startLab(options: UpOptions, hooks: UpHooks = {}): Promise<RunningLab> {
  const note = hooks.note ?? (() => {});
  const log = hooks.log ?? (() => {});
  const began = Date.now();
  const layout = await preflight(options, note);
  ensureHome(options.home);
  const logs = logDir(options.home);
  const config: LabConfig = {
    trust: options.trust,
    workerRecovery: options.workerRecovery,
    logLevel: options.logLevel,
  };
  // The lab's own CA and certificates, made anew at every `up` (full trust; kept in no file).
  const secrets = { adminToken: secret(), trustKey: secret(32), pki: await createLabPki() };
  const build = hooks.build ?? buildFromEnv() ?? (await compiledLab(note));
  const specs = instanceSpecs(layout, config, secrets, logs, build);
  for (const spec of specs) writeFileSync(spec.logFile, '', { mode: 0o600 });

  // A host's members write to its log: a process's events and a member's both land there.
  const logFileOf = new Map(
    specs.flatMap((s) => [s.id, ...(s.members ?? []).map((m) => m.id)].map((id) => [id, s.logFile] as const)),
  );
  const supervisor = new Supervisor({
    instances: specs,
    onEvent: (event) => {
      const line = describeEvent(event);
      if (!line) return;
      log(line);
      const file = logFileOf.get(event.id);
      // The instance's own log says why it stopped and came back, between its lines.
      if (file) appendFileSync(file, `--- chaos-lab supervisor: ${line} ---\n`);
    },
  });

  const startedAt = new Date().toISOString();
  const gateways = Object.fromEntries(Object.entries(layout.gateways).map(([s, plan]) => [s, plan.url]));
  const state: LabState = {
    version: 1,
    pid: process.pid,
    startedAt,
    portBase: layout.base,
    controlUrl: layout.control.url,
    adminToken: secrets.adminToken,
    trust: { mode: options.trust, key: secrets.trustKey },
    workerRecovery: options.workerRecovery,
    gateways: gateways as LabState['gateways'],
    instances: layout.instances.map((i) => ({ id: i.id, service: i.service, url: i.url, port: i.port })),
    proxies: layout.proxies.map((p) => ({
      id: p.id,
      instance: p.instance,
      service: p.service,
      dataUrl: p.dataUrl,
      adminUrl: p.adminUrl,
    })),
    logDir: logs,
  };
  const proxyOf = new Map(layout.proxies.map((p) => [p.id, p]));
  /** The supervisor runs instances and proxies alike; the status tells them apart. */
  const labStatus = (): LabStatus => {
    const all = supervisor.status();
    return {
      pid: process.pid,
      startedAt,
      trust: options.trust,
      workerRecovery: options.workerRecovery,
      gateways,
      liveUrl: live?.url ?? null,
      instances: all.filter((s) => !proxyOf.has(s.id)),
      proxies: all.flatMap((s) => {
        const plan = proxyOf.get(s.id);
        return plan ? [{ ...s, fronts: plan.instance, dataUrl: plan.dataUrl }] : [];
      }),
    };
  };

  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let control: ControlServer | undefined;
  let live: LabLive | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // The page first: it must not scrape instances that are going away.
      await live?.close();
      await supervisor.stop();
      await control?.close();
      removeState(options.home, process.pid);
      resolveStopped();
    })();
    return stopping;
  };

  try {
    control = await startControlServer({
      port: layout.control.port,
      host: LOOPBACK,
      token: secrets.adminToken,
      target: {
        status: labStatus,
        kill: (id) => supervisor.kill(id),
        ids: () => supervisor.ids(),
        shutdown: () => {
          log('shutdown requested over the control API');
          void stop();
        },
      },
    });
  } catch (err) {
    throw new CliError(`cannot open the control API on ${layout.control.url}: ${(err as Error).message}`, {
      hint: 'choose another range with --port-base',
    });
  }
  if (options.live) {
    try {
      live = await startLabLive({
        layout,
        adminToken: secrets.adminToken,
        subtitle: `port base ${layout.base} · trust ${options.trust} · worker recovery ${options.workerRecovery ? 'on' : 'off'}`,
      });
    } catch (err) {
      // The lab is what matters: without its page it still serves, and says why the page is missing.
      note(`no live page: cannot serve it on ${layout.live.url} (${(err as Error).message})`);
    }
  }
  let result: ReadyResult;
  try {
    writeState(options.home, state);
    supervisor.start();
    result = await supervisor.whenReady({
      timeoutMs: options.readyTimeoutMs,
      ...(hooks.signal ? { signal: hooks.signal } : {}),
      onProgress: (ready, total, waitingFor) => hooks.progress?.(ready, total, waitingFor),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  if (!result.ok) {
    const byId = new Map(supervisor.status().map((s) => [s.id, s]));
    await stop();
    if (result.reason !== 'timeout')
      throw new CliError('start-up interrupted; everything started was stopped');
    // Members of one host share its log: its tail once, under all their names.
    const byFile = new Map<string, string[]>();
    for (const id of result.notReady) {
      const file = logFileOf.get(id) ?? path.join(logs, `${id}.log`);
      byFile.set(file, [...(byFile.get(file) ?? []), id]);
    }
    const details = [...byFile].flatMap(([file, ids]) => {
      const status = byId.get(ids[0] as string);
      const exit = status?.lastExit
        ? `, last exit ${status.lastExit.signal ?? `code ${status.lastExit.code}`}, ${status.restarts} restarts`
        : '';
      const tail = tailLines(file, 8);
      return [
        `--- ${ids.join(', ')} (${file}${exit}) ---`,
        ...(tail.length > 0 ? tail.map((l) => `  ${l}`) : ['  (empty log)']),
      ];
    });
    throw new CliError(
      `not ready after ${formatDuration(options.readyTimeoutMs)}: ${result.notReady.join(', ')}; everything was stopped`,
      { details, hint: `see the logs above or in ${logs}; raise the wait with --ready-timeout` },
    );
  }
  return { state, readyInMs: Date.now() - began, liveUrl: live?.url ?? null, stopped, stop };
}

/** `ready 7/23 (waiting for coin-1, …)`: a lab coming up, as `up` and a run starting the lab show it. */
export function progressLine(ready: number, total: number, waitingFor: readonly string[]): string {
  if (waitingFor.length === 0) return `ready ${ready}/${total}`;
  const shown = waitingFor.slice(0, 4).join(', ');
  return `ready ${ready}/${total} (waiting for ${shown}${waitingFor.length > 4 ? ', …' : ''})`;
}
