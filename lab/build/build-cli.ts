/**
 * `node --import tsx lab/build/build-cli.ts [BUILD_ROOT]`: builds (or finds) the lab's build of
 * the sources as they are, under BUILD_ROOT (default: as `ensureLabBuild`), and prints its
 * folder. The Dockerfile builds the image's JavaScript so; an entry whose source is not there
 * (the image has no lab/local/) is left out.
 *
 * A file of its own, never imported: lab-build.ts is bundled into the lab's processes, where an
 * "am I the main module" check would be true of the supervisor itself.
 */
import path from 'node:path';
import { ensureLabBuild } from './lab-build.ts';

const [buildRoot, ...rest] = process.argv.slice(2);
if (rest.length > 0 || buildRoot?.startsWith('-')) {
  process.stderr.write('usage: node --import tsx lab/build/build-cli.ts [BUILD_ROOT]\n');
  process.exit(2);
}
const build = await ensureLabBuild(buildRoot ? { buildRoot: path.resolve(buildRoot) } : {});
process.stdout.write(`${build.dir}\n`);
