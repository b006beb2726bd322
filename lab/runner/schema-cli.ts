/**
 * Writes `experiments/schema.json` from the experiment schema, so editors can complete and check
 * experiment files. `--check` only compares (by content, not layout) and exits 1 when the file is stale.
 *
 *   node --import tsx lab/runner/schema-cli.ts [--check]
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { experimentJsonSchema } from './experiment-schema.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCHEMA_PATH = fileURLToPath(new URL('../../experiments/schema.json', import.meta.url));

/** Whether the file on disk says the same as the schema generated now (layout aside). */
export async function schemaIsCurrent(path = SCHEMA_PATH): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === undefined) return false;
  try {
    return JSON.stringify(JSON.parse(current)) === JSON.stringify(experimentJsonSchema());
  } catch {
    return false;
  }
}

async function write(path: string): Promise<void> {
  await writeFile(path, `${JSON.stringify(experimentJsonSchema(), null, 2)}\n`);
  // `npm run lint` checks every JSON file's layout; letting the repo's formatter lay it out keeps it green.
  const biome = `${ROOT}node_modules/.bin/biome`;
  if (existsSync(biome)) await promisify(execFile)(biome, ['format', '--write', path], { cwd: ROOT });
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--check')) {
    if (await schemaIsCurrent()) return 0;
    process.stderr.write(
      `${SCHEMA_PATH} is stale; regenerate it with: node --import tsx lab/runner/schema-cli.ts\n`,
    );
    return 1;
  }
  await write(SCHEMA_PATH);
  process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
