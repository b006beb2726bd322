/**
 * The running lab's state file: how the CLI finds the supervisor, the instances and the
 * admin token. It holds secrets (the admin token, the trust key), so it lives in a folder
 * only its owner can enter (0700) and is itself 0600, written atomically so a reader never
 * sees half a file.
 */

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TRUST_MODES } from '../../services/lib/trust.ts';
import { STRATEGIES } from '../../services/topology.ts';
import { CliError } from '../cli-error.ts';
import { REPO_ROOT } from '../repo-root.ts';

export { REPO_ROOT };

export const LAB_HOME_ENV = 'CHAOS_LAB_HOME';

/** Where the lab keeps its state and logs: `$CHAOS_LAB_HOME`, else `<repo>/.chaos-lab`. */
export function labHome(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const given = env[LAB_HOME_ENV];
  return given ? path.resolve(given) : path.join(REPO_ROOT, '.chaos-lab');
}

export function statePath(home: string): string {
  return path.join(home, 'state.json');
}

export function logDir(home: string): string {
  return path.join(home, 'logs');
}

/** Creates the home (and its logs folder) if needed, and makes sure only its owner can enter. */
export function ensureHome(home: string): void {
  mkdirSync(logDir(home), { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and ignored for a folder that already exists.
  chmodSync(home, 0o700);
  chmodSync(logDir(home), 0o700);
}

const instanceSchema = z.object({
  id: z.string(),
  service: z.string(),
  url: z.string(),
  port: z.number().int(),
});

const proxySchema = z.object({
  id: z.string(),
  /** The instance it fronts. */
  instance: z.string(),
  service: z.string(),
  dataUrl: z.string(),
  adminUrl: z.string(),
});

const stateSchema = z.object({
  version: z.literal(1),
  pid: z.number().int().positive(),
  startedAt: z.string(),
  portBase: z.number().int(),
  controlUrl: z.string(),
  adminToken: z.string().min(16),
  trust: z.object({ mode: z.enum(TRUST_MODES), key: z.string().min(16) }),
  workerRecovery: z.boolean(),
  gateways: z.record(z.enum(STRATEGIES), z.string()),
  instances: z.array(instanceSchema),
  /** Absent in a lab started before the fault proxies existed. */
  proxies: z.array(proxySchema).optional(),
  logDir: z.string(),
});

export type LabState = z.infer<typeof stateSchema>;
export type StateInstance = z.infer<typeof instanceSchema>;
export type StateProxy = z.infer<typeof proxySchema>;

/** A state file that cannot be read: what every command that looks for the lab says, without a stack trace. */
export class StateFileError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = 'StateFileError';
  }
}

/** The state file's content, or undefined when there is none. A corrupt file is an error. */
export function readState(home: string): LabState | undefined {
  const file = statePath(home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StateFileError(`${file} is not valid JSON; remove it if no lab is running`);
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StateFileError(
      `${file} is not a chaos-lab state file (${issue?.path.join('.') || 'root'}: ${issue?.message}); remove it if no lab is running`,
    );
  }
  return parsed.data;
}

/** Writes the state file atomically (temporary file + rename), mode 0600. */
export function writeState(home: string, state: LabState): void {
  ensureHome(home);
  const file = statePath(home);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Removes the state file; when `ownerPid` is given, only if it still belongs to that process. */
export function removeState(home: string, ownerPid?: number): void {
  if (ownerPid !== undefined) {
    let current: LabState | undefined;
    try {
      current = readState(home);
    } catch {
      current = undefined;
    }
    if (current && current.pid !== ownerPid) return;
  }
  rmSync(statePath(home), { force: true });
}

/**
 * Whether a process with this pid is alive (EPERM: it exists but is not ours). A zombie
 * counts as gone: a detached supervisor is re-parented when its CLI exits, and not every
 * PID 1 in a container reaps the orphans it inherits.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Linux: the state is the field after the parenthesized command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // Gone in the meantime (Linux), or no /proc at all (macOS: signal 0 is all there is).
    return !existsSync('/proc/self/stat');
  }
}

/** Waits (polling every 100 ms) until none of `pids` is alive or `ms` has passed; resolves with those still alive. */
export async function waitPidsGone(pids: readonly number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (let round = 0; round < 10_000; round++) {
    const alive = pids.filter(pidAlive);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pids.filter(pidAlive);
}

/**
 * Whether `pid` runs the lab's supervisor (the background one, or a foreground `up`), not
 * some other program that got the pid of a supervisor long gone. Without /proc (macOS) the
 * pid is taken at its word.
 */
export function isSupervisorProcess(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return !existsSync('/proc/self/cmdline');
  }
  return cmdline.includes('supervisor-main') || cmdline.includes('chaos-lab');
}

export type LabLookup =
  | { readonly kind: 'none' }
  | { readonly kind: 'stale'; readonly state: LabState }
  | { readonly kind: 'running'; readonly state: LabState };

/** Finds the lab in `home`: none, a stale state file (its supervisor is gone), or running. */
export function lookupLab(home: string): LabLookup {
  const state = readState(home);
  if (!state) return { kind: 'none' };
  return pidAlive(state.pid) && isSupervisorProcess(state.pid)
    ? { kind: 'running', state }
    : { kind: 'stale', state };
}

/** A random secret for tokens and keys. */
export function secret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}
