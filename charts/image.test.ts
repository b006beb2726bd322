/**
 * The Dockerfile, checked without a Docker engine: parsed and linted by BuildKit's own parser
 * and linter (the checks of `docker build --check`, through kind/dockerfile-lint, built with
 * Go from the Go module proxy), its build context computed from .dockerignore as the Docker
 * CLI does, and what the image must hold checked against that context. What this cannot
 * verify: that the base image exists, that apt and npm succeed, that the image runs — that
 * needs a `docker build`, which the README leaves to the user (and tools/cluster/images/
 * lab-image.sh runs for the test cluster).
 *
 * Also checked without Go: that the Dockerfile builds with the classic builder (no BuildKit-only
 * syntax), and that git checks the files the image runs out with LF line endings.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB_ENTRIES } from '../lab/build/lab-build.ts';
import { FAULT_PROXY_CONTAINER } from '../services/names.ts';
import { container, find, synthLab } from './__fixtures__/manifests.ts';
import { FAULT_SIDECAR_CONTAINER } from './fault-sidecar.ts';
import { SERVICE_USER } from './service-container.ts';

const REPO = path.join(import.meta.dirname, '..');
const LINTER_SOURCE = path.join(REPO, 'kind', 'dockerfile-lint');

interface LintReport {
  readonly warnings: { rule: string; detail: string; line: number }[];
  readonly error?: string;
  readonly instructions: { instruction: string; original: string; line: number }[];
  readonly context: string[];
}

// CI has Go (it builds k6 with it too), so there a missing Go is a failure, not a skip.
const goMissing = spawnSync('go', ['version']).status !== 0 && !process.env.CI;
if (goMissing)
  console.log('skipping the Dockerfile checks: Go is not installed (they build kind/dockerfile-lint)');

describe.skipIf(goMissing)('Dockerfile', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'dockerfile-lint-'));
  const binary = path.join(work, 'dockerfile-lint');
  let report: LintReport;

  const lint = (dockerfile: string, contextDir = REPO): LintReport =>
    JSON.parse(execFileSync(binary, [dockerfile, contextDir], { encoding: 'utf8' })) as LintReport;

  beforeAll(() => {
    // The first build downloads BuildKit's modules from the Go module proxy (about a minute);
    // later ones come from Go's build cache.
    execFileSync('go', ['build', '-o', binary, '.'], { cwd: LINTER_SOURCE, stdio: 'pipe', timeout: 600_000 });
    report = lint(path.join(REPO, 'Dockerfile'));
  }, 600_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const runtimeStage = () => {
    const froms = report.instructions
      .map((i, index) => (i.instruction === 'FROM' ? index : -1))
      .filter((i) => i >= 0);
    return report.instructions.slice(froms.at(-1));
  };

  it('has no lint warning and no error from BuildKit', () => {
    expect(report.error ?? '').toBe('');
    expect(report.warnings).toEqual([]);
  });

  it('would say so if it had: a careless Dockerfile gets warnings', () => {
    const careless = path.join(work, 'Dockerfile.careless');
    writeFileSync(careless, 'from node:20 as Build\nENV MODE dev\ncopy . .\nCMD node services/main.ts\n');
    const rules = lint(careless).warnings.map((w) => w.rule);
    expect(rules).toEqual(
      expect.arrayContaining(['StageNameCasing', 'LegacyKeyValueFormat', 'JSONArgsRecommended']),
    );
  });

  it('builds in stages: production dependencies as the lock file says, the JavaScript built from them, a runtime with the build alone', () => {
    const froms = report.instructions.filter((i) => i.instruction === 'FROM').map((i) => i.original);
    expect(froms).toHaveLength(3);
    expect(froms[1]).toBe('FROM deps AS build');
    const install = report.instructions.find((i) => i.instruction === 'RUN' && i.original.includes('npm ci'));
    expect(install?.original).toContain('--omit=dev');
    // The lab's own build (lab/build/lab-build.ts through its CLI), as the local lab runs it.
    const build = report.instructions.find(
      (i) => i.instruction === 'RUN' && i.original.includes('build-cli.ts'),
    );
    expect(build?.original).toMatch(/node --import tsx lab\/build\/build-cli\.ts \S+/);
    expect(build?.original).toContain('/app/dist');
    const runtime = runtimeStage();
    expect(runtime.filter((i) => i.original.includes('--from=')).map((i) => i.original)).toEqual([
      'COPY --from=build /app/dist ./',
    ]);
    expect(
      runtime.some((i) => i.original.includes('node_modules')),
      'no node_modules: the bundles carry them',
    ).toBe(false);
    const version = /ARG NODE_VERSION=(\d+)\.(\d+)/.exec(report.instructions[0]?.original ?? '');
    expect(version, 'ARG NODE_VERSION=<major>.<minor> first').not.toBeNull();
    // package.json's engines: node >= 20.19.
    expect(Number(version?.[1]) * 100 + Number(version?.[2])).toBeGreaterThanOrEqual(2019);
  });

  it('runs the services as the numeric non-root user the chart expects, the service as the argument', () => {
    const stage = runtimeStage();
    const users = stage.filter((i) => i.instruction === 'USER').map((i) => i.original);
    expect(users).toEqual([`USER ${SERVICE_USER}:${SERVICE_USER}`]);
    const entrypoint = stage
      .find((i) => i.instruction === 'ENTRYPOINT')
      ?.original.replace(/^ENTRYPOINT\s+/, '');
    expect(JSON.parse(entrypoint ?? 'null')).toEqual(['node', 'services/main.js']);
    expect(
      stage.some((i) => i.instruction === 'CMD'),
      'no default service: the chart passes it',
    ).toBe(false);
  });

  it('carries tc, nft and the fault sidecar under the name the chart runs', () => {
    const stage = runtimeStage();
    const apt = stage.find((i) => i.original.includes('apt-get install'));
    expect(apt?.original).toMatch(/\biproute2\b/);
    expect(apt?.original).toMatch(/\bnftables\b/);
    const command = container(find(synthLab(), 'Deployment', 'coin'), FAULT_SIDECAR_CONTAINER).command[0];
    const target = `/usr/local/bin/${command}`;
    const copy = stage.findIndex(
      (i) =>
        i.instruction === 'COPY' && i.original.endsWith(` services/fault-sidecar/fault-sidecar.sh ${target}`),
    );
    expect(copy, `COPY services/fault-sidecar/fault-sidecar.sh ${target}`).toBeGreaterThan(0);
    // Executable whatever mode the checkout gave the script, made so by root before USER (the
    // classic builder has no COPY --chmod).
    const chmod = stage.findIndex(
      (i, index) =>
        index > copy &&
        i.instruction === 'RUN' &&
        /\bchmod\s+(0?755|\+x|a\+rx)\s+(\S+)/.exec(i.original)?.[2] === target,
    );
    expect(chmod, `RUN chmod 0755 ${target} after the COPY`).toBeGreaterThan(copy);
    expect(chmod).toBeLessThan(stage.findIndex((i) => i.instruction === 'USER'));
  });

  it('sends a build context of the services, the build script and the package files, without tests, fixtures or state', () => {
    const context = new Set(report.context);
    for (const needed of [
      'package.json',
      'package-lock.json',
      'services/main.ts',
      'services/topology.ts',
      'lab/build/lab-build.ts',
      'lab/build/build-cli.ts',
      'lab/repo-root.ts',
    ]) {
      expect(context.has(needed), needed).toBe(true);
    }
    for (const file of report.context) {
      expect(file, 'only package files, tsconfig.json, services/ and the build script').toMatch(
        /^(package\.json|package-lock\.json|tsconfig\.json|services\/.+|lab\/repo-root\.ts|lab\/build\/(lab-build|build-cli)\.ts)$/,
      );
      expect(file).not.toMatch(/\.test\.ts$|__fixtures__|node_modules/);
    }
    // Every source a COPY takes from the context is in it.
    for (const copy of report.instructions.filter(
      (i) => i.instruction === 'COPY' && !i.original.includes('--from'),
    )) {
      const words = copy.original
        .split(/\s+/)
        .slice(1)
        .filter((w) => !w.startsWith('--'));
      for (const source of words.slice(0, -1)) {
        const inContext = context.has(source) || report.context.some((f) => f.startsWith(`${source}/`));
        expect(inContext, `${copy.original}: ${source} is in the build context`).toBe(true);
      }
    }
  });

  it('builds everything the services and the fault proxy import, from the context or the production dependencies', () => {
    const context = new Set(report.context);
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    const production = new Set(Object.keys(pkg.dependencies ?? {}));
    const seen = new Set<string>();
    // The proxy's entry point as the chart runs it (the last word of its container's command) and
    // the services' (the image's ENTRYPOINT): compiled files whose sources the build bundles.
    const proxyEntry = container(find(synthLab(), 'Deployment', 'coin'), FAULT_PROXY_CONTAINER).command.at(
      -1,
    );
    expect(proxyEntry).toBe('services/fault-proxy/main.js');
    const sources = ['services/main.js', proxyEntry as string].map((js) => js.replace(/\.js$/, '.ts'));
    for (const source of sources) {
      expect(Object.values(LAB_ENTRIES), `${source} is an entry of the build`).toContain(source);
    }
    const queue = [...sources];
    const packages = new Set<string>();
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      expect(context.has(file), `${file} (imported by the services) is in the build context`).toBe(true);
      const source = readFileSync(path.join(REPO, file), 'utf8');
      for (const match of source.matchAll(/(?:from\s+|import\s*\(\s*)'([^']+)'/g)) {
        const specifier = match[1] as string;
        if (specifier.startsWith('.')) {
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
          expect(existsSync(path.join(REPO, target)), `${file} imports ${specifier}`).toBe(true);
          queue.push(target);
        } else if (!specifier.startsWith('node:')) {
          packages.add(
            specifier.startsWith('@')
              ? specifier.split('/').slice(0, 2).join('/')
              : (specifier.split('/')[0] as string),
          );
        }
      }
    }
    expect(seen.size).toBeGreaterThan(10);
    for (const name of packages)
      expect(production.has(name), `${name} is a production dependency`).toBe(true);
    for (const builder of ['tsx', 'esbuild'])
      expect(production.has(builder), `${builder} builds the image's JavaScript`).toBe(true);
  });
});

/**
 * Flags the classic builder knows (Docker's builder without BuildKit: a distro's docker, colima's,
 * the test cluster's private engine). Any other flag — RUN --mount/--network, COPY/ADD --chmod,
 * --link, --parents, --exclude, ADD --checksum — needs BuildKit.
 */
const CLASSIC_FLAGS: Readonly<Record<string, readonly string[]>> = {
  FROM: ['platform'],
  COPY: ['from', 'chown'],
  ADD: ['chown'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'retries'],
};

/** BuildKit-only syntax in a Dockerfile, one finding per use, with its line. */
function buildKitOnlySyntax(dockerfile: string): string[] {
  const findings: string[] = [];
  const lines = dockerfile.split('\n');
  // Parser directives come first, before any comment or instruction; these two need BuildKit.
  for (const [index, line] of lines.entries()) {
    const directive = /^#\s*([a-z]+)\s*=/i.exec(line);
    if (!directive) break;
    if (['syntax', 'check'].includes(directive[1]?.toLowerCase() ?? '')) {
      findings.push(`line ${index + 1}: the # ${directive[1]}= directive`);
    }
  }
  let start = 0;
  let text = '';
  for (const [index, line] of lines.entries()) {
    if (text === '' && /^\s*(#|$)/.test(line)) continue;
    if (text !== '' && /^\s*#/.test(line)) continue; // a comment inside a continued instruction
    if (text === '') start = index + 1;
    text += `${line.replace(/\\\s*$/, '')} `;
    if (/\\\s*$/.test(line)) continue;
    const words = text.trim().split(/\s+/);
    text = '';
    if (words[0]?.toUpperCase() === 'ONBUILD') words.shift();
    const instruction = words[0]?.toUpperCase() ?? '';
    for (const word of words.slice(1)) {
      if (!word.startsWith('--')) break;
      const flag = word.slice(2).split('=')[0] ?? '';
      if (!(CLASSIC_FLAGS[instruction] ?? []).includes(flag)) {
        findings.push(`line ${start}: ${instruction} --${flag}`);
      }
    }
    if (['RUN', 'COPY', 'ADD'].includes(instruction) && words.some((w) => /^<<-?["']?[A-Za-z_]/.test(w))) {
      findings.push(`line ${start}: a heredoc in ${instruction}`);
    }
  }
  return findings;
}

describe('Dockerfile for the classic builder', () => {
  it('uses no BuildKit-only syntax: it builds where there is no BuildKit', () => {
    expect(buildKitOnlySyntax(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'))).toEqual([]);
  });

  it('would say so if it did', () => {
    const buildKit = [
      '# syntax=docker/dockerfile:1.7',
      '# One image.',
      'FROM --platform=linux/amd64 node:20 AS deps',
      'RUN --mount=type=cache,target=/root/.npm \\',
      '  npm ci',
      'COPY --from=deps --link /app /app',
      'COPY --chmod=0755 services/fault-sidecar/fault-sidecar.sh /usr/local/bin/fault-sidecar',
      'ADD --checksum=sha256:0000 https://example.com/x.tgz /x.tgz',
      'RUN <<EOF',
      'echo hi',
      'EOF',
      'COPY --chown=10001:10001 package.json ./',
      'USER 10001:10001',
    ].join('\n');
    expect(buildKitOnlySyntax(buildKit)).toEqual([
      'line 1: the # syntax= directive',
      'line 4: RUN --mount',
      'line 6: COPY --link',
      'line 7: COPY --chmod',
      'line 8: ADD --checksum',
      'line 9: a heredoc in RUN',
    ]);
  });
});

describe('line endings', () => {
  // In a git checkout (CI's is a fresh clone) git itself says which line endings it writes.
  const git = (...args: string[]) => spawnSync('git', args, { cwd: REPO, encoding: 'utf8' });
  const inCheckout = git('rev-parse', '--is-inside-work-tree').stdout?.trim() === 'true';
  const sidecar = 'services/fault-sidecar/fault-sidecar.sh';

  it('.gitattributes keeps LF for scripts and sources on every platform', () => {
    const rules = readFileSync(path.join(REPO, '.gitattributes'), 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/).join(' '));
    // A CRLF shebang (`#!/bin/sh\r`) stops the sidecar from starting: it would crash-loop.
    expect(rules).toContain('* text=auto eol=lf');
    expect(rules).toContain('*.sh text eol=lf');
  });

  it.skipIf(!inCheckout && !process.env.CI)('git writes the sidecar and the Dockerfile with LF', () => {
    const attributes = git('check-attr', 'eol', '--', sidecar, 'Dockerfile');
    expect(attributes.stderr).toBe('');
    expect(attributes.stdout).toBe(`${sidecar}: eol: lf\nDockerfile: eol: lf\n`);
    expect(readFileSync(path.join(REPO, sidecar), 'utf8')).not.toContain('\r');
  });
});
