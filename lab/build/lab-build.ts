/**
 * The lab's processes run compiled JavaScript, not TypeScript compiled by tsx at every start:
 * on a two-core laptop, 14 processes each compiling their sources at once took most of the
 * 25 s an `up` lasted, and the first seconds of every run measured the compiler, not the lab.
 *
 * Each entry point is bundled once with esbuild (one file per process: nothing to resolve at
 * start) into `.build/<fingerprint>/`, mirroring the sources' paths. The fingerprint is a hash
 * of every source file the lab's processes are built from, the lockfile and the tools, so an
 * edited source (or a `git checkout`) makes a new build at the next start, and an unchanged
 * tree reuses the last one. A build is made in a private folder and renamed into place, so two
 * commands starting at once never see half a build; the loser of that race uses the winner's.
 */

import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import { REPO_ROOT } from '../repo-root.ts';

/** The processes of a local lab and of the image, by what they run. */
export const LAB_ENTRIES = {
  /** Every backend and gateway: `node <entry> <service>`. */
  service: 'services/main.ts',
  /** One process that hosts every fault proxy of the lab. */
  faultProxies: 'services/fault-proxy/host-main.ts',
  /** One fault proxy alone: the sidecar of a backend pod on Kubernetes (the image's other entry). */
  faultProxy: 'services/fault-proxy/main.ts',
  /** The lab's kubelet (`chaos-lab up --detach`, and a run's own lab). */
  supervisor: 'lab/local/supervisor-main.ts',
} as const;

export type LabEntry = keyof typeof LAB_ENTRIES;

/** Folders whose sources go into the build (tests and fixtures never do). */
const SOURCE_DIRS = ['services', 'lab'];
/** Files outside them that change what a build holds. */
const BUILD_INPUTS = ['package-lock.json'];
/** Bumped when the options below change: an old build must not be reused. */
const BUILD_FORMAT = 3;
/** Builds other than the newest ones are removed once they are this old (a running lab may still use one). */
const KEEP_OLD_BUILDS_MS = 24 * 3_600_000;
const KEEP_NEWEST = 3;
/** While sources are being edited, a build a start makes: at most this many (8 MiB each) beyond an hour. */
const KEEP_RECENT = 8;
const KEEP_RECENT_MS = 3_600_000;

export interface LabBuild {
  /** `.build/<fingerprint>` */
  readonly dir: string;
  readonly fingerprint: string;
  /** Whether this call built it (false: a build of the same sources was there). */
  readonly built: boolean;
  /** How long the check (and the build, if any) took. */
  readonly tookMs: number;
}

export interface EnsureBuildOptions {
  /** @default the repository root */
  readonly root?: string;
  /** @default `$CHAOS_LAB_BUILD_ROOT`, else `<root>/.build` */
  readonly buildRoot?: string;
  /** Told before a build starts (it takes about a second). */
  readonly onBuild?: (why: string) => void;
}

/** The compiled file of an entry point in a build. */
export function entryPath(build: Pick<LabBuild, 'dir'>, entry: LabEntry): string {
  return path.join(build.dir, LAB_ENTRIES[entry].replace(/\.ts$/, '.js'));
}

/** Where builds are kept, when not `<repo>/.build` (the tours bench compiles afresh in a scratch folder). */
export const BUILD_ROOT_ENV = 'CHAOS_LAB_BUILD_ROOT';

/** Where a build made by `ensureLabBuild` is handed to the supervisor process it starts. */
export const LAB_BUILD_ENV = 'CHAOS_LAB_BUILD';

/** The build named by CHAOS_LAB_BUILD when it is complete, else undefined. */
export function buildFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): LabBuild | undefined {
  const dir = env[LAB_BUILD_ENV];
  if (!dir || !isComplete(dir)) return undefined;
  return { dir, fingerprint: path.basename(dir), built: false, tookMs: 0 };
}

/** Every source file of the build, sorted, with the inputs outside the source folders. */
export function buildInputs(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === '__fixtures__' || entry.name === 'node_modules') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(ts|js|mjs|json)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) files.push(full);
    }
  };
  for (const dir of SOURCE_DIRS) walk(path.join(root, dir));
  for (const file of BUILD_INPUTS) {
    const full = path.join(root, file);
    if (existsSync(full)) files.push(full);
  }
  return files.sort();
}

/**
 * A hash of the inputs' paths and contents, Node's major version, the bundler's version and the
 * repository's place (a build names it: two checkouts never share one).
 */
export function fingerprint(root: string): string {
  const hash = createHash('sha256');
  hash.update(
    `format ${BUILD_FORMAT} node ${process.versions.node.split('.')[0]} esbuild ${esbuildVersion(root)}\n`,
  );
  hash.update(`root ${path.resolve(root)}\n`);
  for (const file of buildInputs(root)) {
    hash.update(`${path.relative(root, file)}\n`);
    hash.update(readFileSync(file));
    hash.update('\n');
  }
  return hash.digest('hex').slice(0, 16);
}

function esbuildVersion(root: string): string {
  try {
    const manifest = path.join(root, 'node_modules', 'esbuild', 'package.json');
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
  } catch {
    return 'none';
  }
}

const COMPLETE_MARK = 'build.json';

function isComplete(dir: string): boolean {
  return existsSync(path.join(dir, COMPLETE_MARK));
}

/**
 * The build of the sources as they are now: the cached one, or a new one made at once. Throws
 * with the bundler's message when a source does not compile.
 */
export async function ensureLabBuild(options: EnsureBuildOptions = {}): Promise<LabBuild> {
  const began = performance.now();
  const root = options.root ?? REPO_ROOT;
  const buildRoot = options.buildRoot ?? process.env[BUILD_ROOT_ENV] ?? path.join(root, '.build');
  const print = fingerprint(root);
  const dir = path.join(buildRoot, print);
  if (isComplete(dir)) {
    return { dir, fingerprint: print, built: false, tookMs: performance.now() - began };
  }
  options.onBuild?.(
    existsSync(buildRoot) && readdirSync(buildRoot).length > 0
      ? 'the sources changed since the last build'
      : 'first start',
  );
  mkdirSync(buildRoot, { recursive: true });
  const scratch = path.join(buildRoot, `.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    await bundle(root, scratch);
    // The bundles are ES modules wherever the build is put (the image has no package.json of the repository's).
    writeFileSync(path.join(scratch, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      path.join(scratch, COMPLETE_MARK),
      `${JSON.stringify({ fingerprint: print, builtAt: new Date().toISOString(), entries: LAB_ENTRIES }, null, 2)}\n`,
    );
    try {
      renameSync(scratch, dir);
    } catch (err) {
      // Another command built the same sources first: theirs is as good as ours.
      if (!isComplete(dir)) throw err;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  pruneOldBuilds(buildRoot, print);
  return { dir, fingerprint: print, built: true, tookMs: performance.now() - began };
}

/** The module whose result the build computes once and bundles (see precomputedDataset). */
export const PRECOMPUTED_MODULE = 'services/backends/dataset-generate.ts';

/**
 * The source of a module standing in for services/backends/dataset-generate.ts: its result, made
 * now, as JSON (parsed in a few milliseconds, where faker took a few hundred at every start).
 */
export async function precomputedDatasetModule(root: string): Promise<string> {
  const { generateDataset } = (await import(pathToFileURL(path.join(root, PRECOMPUTED_MODULE)).href)) as {
    generateDataset: () => unknown;
  };
  const json = JSON.stringify(generateDataset());
  return `export function generateDataset() {\n  return JSON.parse(${JSON.stringify(json)});\n}\n`;
}

function precomputedDataset(root: string): Plugin {
  const target = path.join(root, PRECOMPUTED_MODULE);
  return {
    name: 'precomputed-dataset',
    setup(build) {
      build.onResolve({ filter: /dataset-generate\.ts$/ }, (args) => {
        const resolved = path.resolve(args.resolveDir, args.path);
        return resolved === target ? { path: resolved, namespace: 'precomputed' } : undefined;
      });
      build.onLoad({ filter: /.*/, namespace: 'precomputed' }, async () => ({
        contents: await precomputedDatasetModule(root),
        loader: 'js',
      }));
    },
  };
}

async function bundle(root: string, outdir: string): Promise<void> {
  // Loaded only when a build is needed: most starts find one.
  const { build } = await import('esbuild');
  const entryPoints = Object.values(LAB_ENTRIES)
    .map((entry) => path.join(root, entry))
    .filter((file) => existsSync(file));
  await build({
    entryPoints,
    outbase: root,
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Code shared by entries, and what only some runs load (`import()`: the gateway's code in a
    // backend), goes to chunks: each process parses and keeps only what it runs.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    // The bundler itself is only needed to build, never by a built process.
    external: ['esbuild'],
    // No keepNames: stack traces keep the names anyway (esbuild does not minify), and its
    // `__name()` wrapper ran Object.defineProperty on every closure made per request, 2% of a
    // backend's CPU.
    // The repository the build was made from (lab/repo-root.ts), wherever the build is kept.
    define: { __CHAOS_LAB_ROOT__: JSON.stringify(root) },
    logLevel: 'silent',
    plugins: [precomputedDataset(root)],
    // CommonJS dependencies (express, pino…) call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __labRequire } from 'node:module'; const require = __labRequire(import.meta.url);",
    },
  });
}

function pruneOldBuilds(buildRoot: string, keep: string): void {
  const now = Date.now();
  const builds = readdirSync(buildRoot, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== keep)
    .map((e) => {
      const dir = path.join(buildRoot, e.name);
      return { dir, mtimeMs: statSync(dir).mtimeMs, scratch: e.name.startsWith('.tmp-') };
    })
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  builds.forEach((b, i) => {
    const age = now - b.mtimeMs;
    const stale = age > KEEP_OLD_BUILDS_MS && (b.scratch || i >= KEEP_NEWEST - 1);
    const surplus = age > KEEP_RECENT_MS && i >= KEEP_RECENT - 1;
    if (stale || surplus) rmSync(b.dir, { recursive: true, force: true });
  });
}
