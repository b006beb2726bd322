/**
 * A stand-in for a backend pod's main process, for `fault-sidecar kill-main`: a real node process
 * whose command line ends as the main container's does (`node services/main.js coin`, the
 * image's entry point; `entry` may name another), so that the script finds it in /proc as it
 * would in a pod, and a real SIGKILL ends it.
 * It idles until then, or until its parent goes (its stdin closes): a test that dies leaves none.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import path from 'node:path';

const IDLE = "process.stdin.on('end', () => process.exit(0)); process.stdin.resume();";

export interface MainStandIn {
  readonly pid: number;
  /** How it ended: the signal that killed it, or its exit code. */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /**
   * Links it into `procDir` as `/proc/<pid>` (or under `as`, e.g. `1`): a directory that holds only
   * the processes one pod would see, for FAULT_PROC_DIR.
   */
  linkInto(procDir: string, as?: string): void;
  stop(): Promise<void>;
}

export function startMainStandIn(service: string, entry = 'services/main.js'): MainStandIn {
  const child: ChildProcess = spawn(process.execPath, ['-e', IDLE, entry, service], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start a stand-in for ${service}'s main process`);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid,
    ended,
    running,
    linkInto(procDir, as = String(pid)) {
      symlinkSync(`/proc/${pid}`, path.join(procDir, as));
    },
    async stop() {
      if (!running()) return;
      child.stdin?.end();
      await ended;
    },
  };
}
