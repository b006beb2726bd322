/**
 * The folder run results go to: checked before anything starts, created when the run opens its journal.
 *
 * Neither may hang. Node's recursive mkdir (`mkdirSync(dir, { recursive: true })`, and its async form)
 * spins forever where mkdir answers ENOENT for a child of a folder that exists — anywhere under /proc, or
 * below a link to nothing: it reads ENOENT as "the parent is missing", makes the parent (EEXIST), and tries
 * the child again. Synchronous, it froze the event loop, so Ctrl-C could not reach the run's handler. So
 * the check uses only calls that return (and gives up on a filesystem that does not answer at all), and
 * the folders are made one level at a time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { lstat, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** How long the check waits for the filesystem (a hung network mount) before it refuses the folder. */
export const CHECK_TIMEOUT_MS = 5_000;

/** The filesystem calls the check makes; tests give ones that never answer. */
export interface FolderProbeFs {
  stat(file: string): Promise<{ isDirectory(): boolean }>;
  lstat(file: string): Promise<unknown>;
  mkdir(dir: string): Promise<unknown>;
  writeFile(file: string, data: string): Promise<void>;
  rm(file: string, options: { recursive: true; force: true }): Promise<void>;
}

const nodeFs: FolderProbeFs = { stat, lstat, mkdir: (dir) => mkdir(dir), writeFile, rm };

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** The deepest folder of `dir` that exists, `dir` itself included; or why there is none to write in. */
async function deepestFolder(
  fs: FolderProbeFs,
  dir: string,
): Promise<{ folder: string } | { problem: string }> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      const found = await fs.stat(at);
      if (found.isDirectory()) return { folder: at };
      return { problem: at === dir ? 'not a folder' : `${at} is not a folder` };
    } catch (err) {
      const code = codeOf(err);
      if (code === 'ENOENT') {
        // stat follows links and lstat does not: a link to nothing is there, yet leads nowhere.
        const link = await fs.lstat(at).then(
          () => true,
          () => false,
        );
        if (link) return { problem: `${at} is a link to nothing` };
      } else if (code !== 'ENOTDIR') {
        return { problem: `${at}: ${code}` };
      }
    }
    if (path.dirname(at) === at) return { problem: 'no folder of it exists' };
  }
}

/**
 * Why run folders cannot be written in `dir`, or undefined when they can: its deepest existing folder must
 * take a new folder with a file in it (the kernel's /proc and /sys take neither, whatever the permissions
 * say). What the probe makes there is removed again: nothing is left behind.
 */
export async function resultsFolderProblem(
  dir: string,
  options: { readonly fs?: FolderProbeFs; readonly timeoutMs?: number } = {},
): Promise<string | undefined> {
  const fs = options.fs ?? nodeFs;
  const timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
  const check = async (): Promise<string | undefined> => {
    const found = await deepestFolder(fs, dir);
    if ('problem' in found) return found.problem;
    const probe = path.join(
      found.folder,
      `.chaos-lab-probe-${process.pid}-${randomBytes(3).toString('hex')}`,
    );
    try {
      await fs.mkdir(probe);
    } catch (err) {
      return `no folder can be made in ${found.folder}: ${codeOf(err)}`;
    }
    try {
      await fs.writeFile(path.join(probe, 'probe'), '');
      return undefined;
    } catch (err) {
      return `no file can be written in a folder made in ${found.folder}: ${codeOf(err)}`;
    } finally {
      await fs.rm(probe, { recursive: true, force: true }).catch(() => {});
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(
      () => resolve(`the filesystem did not answer within ${timeoutMs / 1000} s`),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([check(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `mkdir -p`, one level at a time: each missing folder from the top down, an existing one taken as it is.
 * It fails with mkdir's own error where Node's recursive mkdir would spin (see above).
 */
export function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !existsSync(at) && path.dirname(at) !== at; at = path.dirname(at)) {
    missing.unshift(at);
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder);
    } catch (err) {
      if (codeOf(err) !== 'EEXIST') throw err;
    }
  }
}
