/**
 * The catalog: the experiment files in `experiments/`, found by name (`weak-dependency-latency` is
 * `experiments/weak-dependency-latency.yaml`) or given as a path to any file.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../local/state.ts';
import { type Experiment, ExperimentError, loadExperiment } from './experiment.ts';

export const EXPERIMENTS_DIR = path.join(REPO_ROOT, 'experiments');
const EXTENSIONS = ['.yaml', '.yml'];

/** A name that is neither a file nor in the catalog. */
export class UnknownExperimentError extends Error {
  override readonly name = 'UnknownExperimentError';
  constructor(
    readonly given: string,
    readonly available: readonly string[],
  ) {
    super(
      `no experiment named ${JSON.stringify(given)} and no such file; expected a file path or one of: ${
        available.length > 0 ? available.join(', ') : '(the catalog is empty)'
      }`,
    );
  }
}

/** Experiment files of the catalog, sorted by name (schema.json and other files are not experiments). */
export function catalogFiles(dir: string = EXPERIMENTS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => EXTENSIONS.includes(path.extname(file)))
    .sort()
    .map((file) => path.join(dir, file));
}

export function catalogNames(dir: string = EXPERIMENTS_DIR): string[] {
  return catalogFiles(dir).map((file) => path.basename(file, path.extname(file)));
}

/**
 * The file for `nameOrFile`: an existing file as given (relative to `cwd`), else `<dir>/<name>.yaml`.
 * Returned relative to `cwd` when inside it, so messages show the path the way the user thinks of it.
 */
export function resolveExperiment(nameOrFile: string, options: { dir?: string; cwd?: string } = {}): string {
  const dir = options.dir ?? EXPERIMENTS_DIR;
  const cwd = options.cwd ?? process.cwd();
  const asGiven = path.resolve(cwd, nameOrFile);
  if (existsSync(asGiven) && statSync(asGiven).isFile()) return display(asGiven, cwd);
  const looksLikeName = /^[a-z0-9][a-z0-9-]*$/.test(nameOrFile);
  if (looksLikeName) {
    for (const extension of EXTENSIONS) {
      const file = path.join(dir, `${nameOrFile}${extension}`);
      if (existsSync(file)) return display(file, cwd);
    }
  }
  // A path-like argument that does not exist is left to the loader, whose message names the file.
  if (!looksLikeName) return nameOrFile;
  throw new UnknownExperimentError(nameOrFile, catalogNames(dir));
}

function display(file: string, cwd: string): string {
  const relative = path.relative(cwd, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

export type CatalogEntry =
  | { readonly file: string; readonly experiment: Experiment }
  | { readonly file: string; readonly error: ExperimentError };

/** Every experiment of the catalog, loaded and validated; a broken file is an entry with its error. */
export async function loadCatalog(dir: string = EXPERIMENTS_DIR): Promise<CatalogEntry[]> {
  const entries: CatalogEntry[] = [];
  for (const file of catalogFiles(dir)) {
    try {
      entries.push({ file, experiment: await loadExperiment(file) });
    } catch (err) {
      if (!(err instanceof ExperimentError)) throw err;
      entries.push({ file, error: err });
    }
  }
  return entries;
}

/**
 * How long a run lasts at least: every variant runs every phase, after its warm-up of `warmupMs` at least
 * (it goes on until the lab is steady, `steadyTimeoutMs` at most), settling and injections not counted.
 */
export function totalDurationMs(experiment: Experiment, warmupMs: number): number {
  const phases = experiment.phases.reduce((sum, phase) => sum + phase.durationMs, 0);
  return experiment.variants.length * (phases + warmupMs);
}
