/**
 * `chaos-lab list`: the catalog's experiments with their length and description. A file that does not
 * validate is listed too, with its first problem, and makes the exit code 1: the catalog is supposed
 * to be runnable as shipped.
 */
import path from 'node:path';
import { formatDuration } from '../duration.ts';
import { type Io, say, table, warn } from '../io.ts';
import { EXPERIMENTS_DIR, loadCatalog, totalDurationMs } from '../runner/catalog.ts';
import { formatProblem } from '../runner/experiment.ts';
import { DEFAULT_TIMING } from '../runner/run.ts';

export async function listCommand(io: Io, dir: string = EXPERIMENTS_DIR): Promise<number> {
  const entries = await loadCatalog(dir);
  if (entries.length === 0) {
    warn(io, `chaos-lab: no experiment files (*.yaml) in ${dir}`);
    return 1;
  }
  const rows: string[][] = [];
  let broken = 0;
  for (const entry of entries) {
    const name = path.basename(entry.file, path.extname(entry.file));
    if ('error' in entry) {
      broken++;
      const first = entry.error.problems[0];
      rows.push([
        name,
        'invalid',
        first ? `${formatProblem(entry.file, first)} (npx chaos-lab run ${name} lists every problem)` : '',
      ]);
      continue;
    }
    rows.push([
      name,
      formatDuration(totalDurationMs(entry.experiment, DEFAULT_TIMING.warmupMs)),
      entry.experiment.description,
    ]);
  }
  for (const line of table([['NAME', 'LENGTH', 'DESCRIPTION'], ...rows])) say(io, line);
  say(io, '');
  say(
    io,
    `LENGTH is at least: each variant warms up until the lab is steady (at most ${formatDuration(DEFAULT_TIMING.steadyTimeoutMs)})`,
  );
  say(io, 'run one with: npx chaos-lab run <name>   (or a path to your own file)');
  if (broken > 0) {
    warn(io, `chaos-lab: ${broken} experiment file${broken === 1 ? ' does' : 's do'} not validate`);
    return 1;
  }
  return 0;
}
