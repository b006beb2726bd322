/**
 * Finding the k6 binary the lab drives: `CHAOS_LAB_K6` if set (and then only that one), else the first `k6`
 * on PATH, else the one `npm run tools:k6` builds into `<repo>/.tools/bin/k6`. The scripts are TypeScript and
 * use k6 v2's APIs, so a k6 v1 is passed over (and named in the error if nothing better is found).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../local/state.ts';

export interface K6Binary {
  readonly path: string;
  /** `v2.2.0` */
  readonly version: string;
  /** Where it was found: `CHAOS_LAB_K6`, `PATH` or `.tools/bin/k6`. */
  readonly source: 'CHAOS_LAB_K6' | 'PATH' | '.tools/bin/k6';
}

/** How to get k6, one way per line. */
export const K6_INSTALL_STEPS = [
  'install k6 v2: https://grafana.com/docs/k6/latest/set-up/install-k6/',
  'or, with Go 1.25+, build it into .tools/bin/k6: npm run tools:k6',
  'or point CHAOS_LAB_K6 at a k6 v2 binary',
] as const;

export class K6NotFoundError extends Error {
  override readonly name = 'K6NotFoundError';
  constructor(
    /** What was looked at and why each was passed over. */
    readonly looked: readonly string[],
  ) {
    super(`k6 v2 was not found (${looked.join('; ')}); ${K6_INSTALL_STEPS.join('; ')}`);
  }
}

/** `v2.2.0` from the first line of `k6 version` (`k6 v2.2.0 (go1.26.8, linux/amd64)`). */
export function parseK6Version(output: string): string | undefined {
  return /^k6 (v\d+\.\d+\.\d+\S*)/m.exec(output)?.[1];
}

export interface FindK6Options {
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default the repository this file is in */
  readonly repoRoot?: string;
  /** The output of `<binary> version`. @default runs it (10 s at most) */
  readonly versionOf?: (binary: string) => Promise<string>;
}

export async function findK6(options: FindK6Options = {}): Promise<K6Binary> {
  const env = options.env ?? process.env;
  const versionOf = options.versionOf ?? runVersion;
  const looked: string[] = [];

  const check = async (binary: string, source: K6Binary['source']): Promise<K6Binary | undefined> => {
    let output: string;
    try {
      output = await versionOf(binary);
    } catch (err) {
      looked.push(`${source} ${binary} did not run: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
    const version = parseK6Version(output);
    if (version === undefined) {
      looked.push(
        `${source} ${binary} is not k6 (\`version\` said ${JSON.stringify(output.trim().slice(0, 80))})`,
      );
      return undefined;
    }
    if (!version.startsWith('v2.')) {
      looked.push(`${source} ${binary} is k6 ${version}; the lab's scripts need k6 v2`);
      return undefined;
    }
    return { path: binary, version, source };
  };

  const chosen = env.CHAOS_LAB_K6?.trim();
  if (chosen) {
    // Asked for by name: no falling back to another k6 behind the user's back.
    const binary = path.resolve(chosen);
    if (!isExecutable(binary))
      throw new K6NotFoundError([`CHAOS_LAB_K6=${chosen} is not an executable file`]);
    const found = await check(binary, 'CHAOS_LAB_K6');
    if (found) return found;
    throw new K6NotFoundError(looked);
  }
  looked.push('CHAOS_LAB_K6 is not set');

  const onPath = whichK6(env.PATH ?? '');
  if (onPath) {
    const found = await check(onPath, 'PATH');
    if (found) return found;
  } else {
    looked.push('no k6 on PATH');
  }

  const tools = path.join(options.repoRoot ?? REPO_ROOT, '.tools', 'bin', 'k6');
  if (isExecutable(tools)) {
    const found = await check(tools, '.tools/bin/k6');
    if (found) return found;
  } else {
    looked.push('no .tools/bin/k6');
  }
  throw new K6NotFoundError(looked);
}

/** The first executable `k6` in the PATH's directories. */
export function whichK6(pathList: string): string | undefined {
  for (const dir of pathList.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'k6');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function runVersion(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['version'], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}${stderr ? `: ${stderr.trim()}` : ''}`));
      else resolve(stdout);
    });
  });
}
