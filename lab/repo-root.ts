/**
 * The repository root, found from a module's own location: the CLI may run from any working
 * directory, and a module may run from its source (`lab/local/state.ts`) or from the lab's
 * compiled build (`.build/<fingerprint>/lab/local/supervisor-main.js`), at different depths.
 */

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const PACKAGE_NAME = 'chaos-lab';

/** The nearest folder at or above `from` whose package.json names this project. */
export function findRepoRoot(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && isThisProject(manifest)) return dir;
    if (path.dirname(dir) === dir) {
      throw new Error(`no package.json named ${PACKAGE_NAME} at or above ${from}`);
    }
  }
}

function isThisProject(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

/** Set by the lab's build (lab/build/lab-build.ts): a build may be kept outside the repository. */
declare const __CHAOS_LAB_ROOT__: string | undefined;

export const REPO_ROOT =
  typeof __CHAOS_LAB_ROOT__ === 'string' ? __CHAOS_LAB_ROOT__ : findRepoRoot(import.meta.dirname);
