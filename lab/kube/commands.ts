/**
 * How `up --target kind`, `down` and the doctor run `docker` and `kind`: a child process with its
 * arguments (no shell, so nothing in a path or a tag is ever interpreted), every output line handed
 * to a progress callback as it comes, Ctrl-C honoured by killing the child. Injected everywhere as
 * a CommandRunner, so that the tests can put fake `docker` and `kind` executables on PATH (Docker
 * cannot run on the machines the project is tested on).
 */
import { spawn } from 'node:child_process';

/** How many lines of output a failure shows. */
export const TAIL_LINES = 20;
/** A child that ignores SIGTERM this long after an abort gets SIGKILL. */
const KILL_GRACE_MS = 3_000;
/** stdout is kept for parsing (`kind get clusters`); more than this is dropped from the front. */
const MAX_STDOUT_CHARS = 1_000_000;

export interface CommandResult {
  /** The child's exit code; 127 when the executable is not on PATH, 130 when aborted. */
  readonly exitCode: number;
  /** The executable was not found (spawn's ENOENT): "not installed", not "failed". */
  readonly notFound: boolean;
  /** The run was aborted by the signal and the child killed. */
  readonly aborted: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** The last lines of stdout and stderr as they interleaved: what a failure shows. */
  readonly tail: readonly string[];
}

export interface RunOptions {
  /** Every non-empty line of stdout and stderr, as it arrives. */
  readonly onLine?: (line: string) => void;
  readonly signal?: AbortSignal;
  readonly cwd?: string;
}

export type CommandRunner = (
  command: string,
  args: readonly string[],
  options?: RunOptions,
) => Promise<CommandResult>;

/** `docker build …` for messages. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** A runner that spawns real processes with `env` (PATH decides which `docker` and `kind` run). */
export function processRunner(env: Readonly<Record<string, string | undefined>>): CommandRunner {
  return (command, args, options = {}) =>
    new Promise((resolve) => {
      const { onLine, signal, cwd } = options;
      const tail: string[] = [];
      const out = { stdout: '', stderr: '' };
      let done = false;
      const finish = (exitCode: number, notFound = false) => {
        // spawn reports a missing executable with 'error' and may still emit 'close'.
        if (done) return;
        done = true;
        clearTimeout(killTimer);
        signal?.removeEventListener('abort', onAbort);
        resolve({
          exitCode: signal?.aborted ? 130 : exitCode,
          notFound,
          aborted: Boolean(signal?.aborted),
          stdout: out.stdout,
          stderr: out.stderr,
          tail: tail.slice(-TAIL_LINES),
        });
      };
      let killTimer: NodeJS.Timeout | undefined;
      let child: ReturnType<typeof spawn> | undefined;
      const onAbort = () => {
        child?.kill('SIGTERM');
        killTimer = setTimeout(() => child?.kill('SIGKILL'), KILL_GRACE_MS);
        killTimer.unref();
      };
      if (signal?.aborted) {
        finish(130);
        return;
      }
      child = spawn(command, [...args], {
        env: env as NodeJS.ProcessEnv,
        ...(cwd ? { cwd } : {}),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      const lines = (stream: 'stdout' | 'stderr') => {
        let partial = '';
        return (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          out[stream] = (out[stream] + text).slice(-MAX_STDOUT_CHARS);
          const parts = (partial + text).split(/\r?\n|\r/);
          partial = parts.pop() ?? '';
          for (const line of parts) emit(line);
        };
      };
      const emit = (line: string) => {
        if (line.trim() === '') return;
        tail.push(line);
        if (tail.length > TAIL_LINES * 2) tail.splice(0, tail.length - TAIL_LINES);
        onLine?.(line);
      };
      child.stdout?.on('data', lines('stdout'));
      child.stderr?.on('data', lines('stderr'));
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') finish(127, true);
        else {
          emit(`${command}: ${err.message}`);
          finish(126);
        }
      });
      child.on('close', (code, killedBy) => {
        // A last line without a newline still counts.
        for (const stream of ['stdout', 'stderr'] as const) {
          const last = out[stream].split(/\r?\n|\r/).pop();
          if (last) emit(last);
        }
        finish(code ?? (killedBy ? 128 + 15 : 1));
      });
    });
}
