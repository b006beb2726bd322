import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDataset } from '../../services/backends/dataset-generate.ts';
import { REPO_ROOT } from '../repo-root.ts';
import {
  buildFromEnv,
  ensureLabBuild,
  entryPath,
  fingerprint,
  LAB_BUILD_ENV,
  precomputedDatasetModule,
} from './lab-build.ts';

const run = promisify(execFile);
const scratch = mkdtempSync(path.join(tmpdir(), 'chaos-lab-build-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let roots = 0;
/** A tiny project with the lab's three entry points, each printing what it is. */
function project(): string {
  const root = path.join(scratch, `project-${++roots}`);
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  };
  write('package-lock.json', '{}\n');
  write('services/lib/word.ts', "export const word: string = 'backend';\n");
  write(
    'services/main.ts',
    "import { word } from './lib/word.ts';\nconsole.log(word + ' ' + process.argv[2]);\n",
  );
  write('services/fault-proxy/host-main.ts', "console.log('proxies');\n");
  write('lab/local/supervisor-main.ts', "console.log('supervisor');\n");
  write('lab/local/supervisor-main.test.ts', "console.log('a test');\n");
  return root;
}

describe('the lab build', () => {
  it('changes its fingerprint with a source, the lockfile or the place, not with a test', () => {
    const root = project();
    const first = fingerprint(root);
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprint(root)).toBe(first);
    writeFileSync(path.join(root, 'lab/local/supervisor-main.test.ts'), "console.log('another test');\n");
    expect(fingerprint(root)).toBe(first);
    writeFileSync(path.join(root, 'services/lib/word.ts'), "export const word: string = 'gateway';\n");
    const edited = fingerprint(root);
    expect(edited).not.toBe(first);
    writeFileSync(path.join(root, 'package-lock.json'), '{"lockfileVersion": 3}\n');
    expect(fingerprint(root)).not.toBe(edited);
    expect(fingerprint(project())).not.toBe(fingerprint(root));
  });

  it('builds once, reuses the build while the sources stay, and builds anew when one changes', async () => {
    const root = project();
    const buildRoot = path.join(root, '.build');
    const whys: string[] = [];
    const onBuild = (why: string) => whys.push(why);

    const first = await ensureLabBuild({ root, buildRoot, onBuild });
    expect(first).toMatchObject({ built: true, dir: path.join(buildRoot, fingerprint(root)) });
    const { stdout } = await run(process.execPath, [entryPath(first, 'service'), 'coin']);
    expect(stdout).toBe('backend coin\n');

    const again = await ensureLabBuild({ root, buildRoot, onBuild });
    expect(again).toMatchObject({ built: false, dir: first.dir });

    writeFileSync(path.join(root, 'services/lib/word.ts'), "export const word: string = 'gateway';\n");
    const rebuilt = await ensureLabBuild({ root, buildRoot, onBuild });
    expect(rebuilt.built).toBe(true);
    expect(rebuilt.dir).not.toBe(first.dir);
    expect((await run(process.execPath, [entryPath(rebuilt, 'service'), 'coin'])).stdout).toBe(
      'gateway coin\n',
    );
    expect(whys).toEqual(['first start', 'the sources changed since the last build']);
    // The newer build does not remove the older at once: a running lab may still use it.
    expect(readdirSync(buildRoot).sort()).toEqual([first.fingerprint, rebuilt.fingerprint].sort());
  });

  it('gives two commands starting at once the same complete build, and leaves no scratch', async () => {
    const root = project();
    const buildRoot = path.join(root, '.build');
    const builds = await Promise.all([1, 2, 3].map(() => ensureLabBuild({ root, buildRoot })));
    expect(new Set(builds.map((b) => b.dir)).size).toBe(1);
    expect(readdirSync(buildRoot)).toEqual([fingerprint(root)]);
    expect(buildFromEnv({ [LAB_BUILD_ENV]: builds[0]?.dir })).toMatchObject({ dir: builds[0]?.dir });
    expect((await run(process.execPath, [entryPath(builds[0]!, 'supervisor')])).stdout).toBe('supervisor\n');
  });

  it('keeps the newest builds and the last hour’s, and removes the rest', async () => {
    const root = project();
    const buildRoot = path.join(root, '.build');
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
    const old = Array.from({ length: 10 }, (_, i) => {
      const dir = path.join(buildRoot, `old-${i}`);
      mkdirSync(dir, { recursive: true });
      utimesSync(dir, hoursAgo(2 + i), hoursAgo(2 + i)); // old-0 the newest
      return path.basename(dir);
    });
    const recent = path.join(buildRoot, 'recent');
    mkdirSync(recent);
    const build = await ensureLabBuild({ root, buildRoot });
    expect(readdirSync(buildRoot).sort()).toEqual([build.fingerprint, 'recent', ...old.slice(0, 6)].sort());
  });

  it('names the file and line of a source that does not compile, and keeps no half build', async () => {
    const root = project();
    const buildRoot = path.join(root, '.build');
    writeFileSync(path.join(root, 'services/fault-proxy/host-main.ts'), 'console.log(;\n');
    await expect(ensureLabBuild({ root, buildRoot })).rejects.toThrow(
      /services\/fault-proxy\/host-main\.ts:1/,
    );
    expect(readdirSync(buildRoot)).toEqual([]);
    expect(buildFromEnv({ [LAB_BUILD_ENV]: path.join(buildRoot, fingerprint(root)) })).toBeUndefined();
  });

  it("builds this repository's processes, which find the repository from a build kept elsewhere", async () => {
    const build = await ensureLabBuild({ buildRoot: path.join(scratch, 'repo-build') });
    expect(build.dir.startsWith(scratch)).toBe(true);
    // The supervisor loads the whole lab (its state folder is found from the repository's root)
    // and, not started by the CLI, says so.
    const supervisor = await run(process.execPath, [entryPath(build, 'supervisor')]).catch(
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(supervisor).toMatchObject({ code: 2, stderr: '' });
    expect(supervisor.stdout).toMatch(/CHAOS_LAB_UP_OPTIONS is not set/);
    // Nothing else: the build's CLI (build-cli.ts) is no part of any process, so it never builds
    // from inside one (an "am I the main module" check in a bundled module is true of its entry).
    expect(supervisor.stdout.trim().split('\n')).toHaveLength(1);
    const service = await run(process.execPath, [entryPath(build, 'service'), 'nosuch']).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect(service).toMatchObject({ code: 2 });
    expect((service as { stderr: string }).stderr).toMatch(/unknown service "nosuch"/);
    expect(REPO_ROOT).toBe(path.resolve(import.meta.dirname, '../..'));
    // The backends' data is in the build, made once: faker is not.
    const chunks = readdirSync(path.join(build.dir, 'chunks')).map((f) =>
      readFileSync(path.join(build.dir, 'chunks', f), 'utf8'),
    );
    expect(chunks.some((text) => text.includes('@faker-js/faker'))).toBe(false);
    expect(chunks.some((text) => text.includes('"bvid":"BV'))).toBe(true);
  }, 60_000);

  it('puts in the build the very dataset faker makes', async () => {
    const file = path.join(scratch, 'precomputed.mjs');
    writeFileSync(file, await precomputedDatasetModule(REPO_ROOT));
    const precomputed = (await import(file)) as { generateDataset: typeof generateDataset };
    expect(precomputed.generateDataset()).toEqual(generateDataset());
  });
});
