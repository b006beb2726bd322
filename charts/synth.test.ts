/**
 * `npm run synth` for real: main.ts run by npm into a temporary output folder and lab home,
 * every written object validated against the Kubernetes schema.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { schemaErrors } from './kubernetes-schema.ts';
import { labSecretValues } from './lab-secret.ts';

const REPO = path.join(import.meta.dirname, '..');
const work = mkdtempSync(path.join(tmpdir(), 'chaos-lab-synth-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const clean = { ...process.env };
  delete clean.CHAOS_ADMIN_TOKEN;
  delete clean.TRUST_KEY;
  delete clean.CHAOS_LAB_IMAGE;
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: REPO, env: { ...clean, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

// biome-ignore lint/suspicious/noExplicitAny: manifests are plain JSON read field by field
type Manifest = Record<string, any>;

function readManifests(outdir: string): Manifest[] {
  const files = readdirSync(outdir).filter((f) => f.endsWith('.yaml'));
  return files.flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(outdir, f), 'utf8')).map((doc) => doc.toJS() as Manifest),
  );
}

const secretOf = (manifests: Manifest[]) => manifests.find((m) => m.kind === 'Secret')?.stringData;

describe('npm run synth', () => {
  const home = path.join(work, 'home');
  const outdir = path.join(work, 'dist');

  it('writes manifests that pass the Kubernetes schema, with secrets generated into the lab home', async () => {
    const result = await run('npm', ['run', '--silent', 'synth'], {
      CDK8S_OUTDIR: outdir,
      CHAOS_LAB_HOME: home,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(outdir).sort()).toEqual(['chaos-lab.k8s.yaml', 'k6-job.k8s.yaml']);
    const manifests = readManifests(outdir);
    expect(manifests.map((m) => m.kind)).toContain('NetworkPolicy');
    expect((await Promise.all(manifests.map(schemaErrors))).flat()).toEqual([]);

    const file = path.join(home, 'kind-secrets.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    expect(secretOf(manifests)).toEqual({ CHAOS_ADMIN_TOKEN: stored.adminToken, TRUST_KEY: stored.trustKey });
    expect(stored.adminToken).not.toBe(stored.trustKey);
  }, 90_000);

  it('gives the same secrets on the next synth, and takes them from the environment when set', async () => {
    const first = secretOf(readManifests(outdir));
    expect(
      (await run('npm', ['run', '--silent', 'synth'], { CDK8S_OUTDIR: outdir, CHAOS_LAB_HOME: home })).code,
    ).toBe(0);
    expect(secretOf(readManifests(outdir))).toEqual(first);

    const trustKey = 'a-trust-key-from-the-environment';
    const again = await run('npm', ['run', '--silent', 'synth'], {
      CDK8S_OUTDIR: outdir,
      CHAOS_LAB_HOME: home,
      TRUST_KEY: trustKey,
      CHAOS_LAB_IMAGE: 'registry.example/chaos-lab:1',
    });
    expect(again.code, again.stderr).toBe(0);
    const manifests = readManifests(outdir);
    expect(secretOf(manifests)).toEqual({ CHAOS_ADMIN_TOKEN: first.CHAOS_ADMIN_TOKEN, TRUST_KEY: trustKey });
    const images = new Set(
      manifests
        .filter(
          (m) =>
            m.kind === 'Deployment' && m.metadata.labels['app.kubernetes.io/component'] !== 'observability',
        )
        .flatMap((m) => m.spec.template.spec.containers.map((c: Manifest) => c.image)),
    );
    // Every gateway and backend container, sidecars included; Prometheus and Grafana keep theirs.
    expect(images).toEqual(new Set(['registry.example/chaos-lab:1']));
  }, 90_000);

  it('refuses a secret that is too short, naming the variable, and writes nothing', async () => {
    const elsewhere = path.join(work, 'refused');
    const result = await run('npm', ['run', '--silent', 'synth'], {
      CDK8S_OUTDIR: elsewhere,
      CHAOS_LAB_HOME: path.join(work, 'refused-home'),
      CHAOS_ADMIN_TOKEN: 'short',
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      'CHAOS_ADMIN_TOKEN is invalid: expected at least 16 characters without spaces',
    );
    expect(() => readdirSync(elsewhere)).toThrow();
  }, 90_000);

  it('synthesizes nothing when a chart module is only imported', async () => {
    const quiet = path.join(work, 'import-only');
    const result = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        "await import('./charts/lab-chart.ts'); await import('./charts/lab-secret.ts');",
      ],
      { CDK8S_OUTDIR: quiet, CHAOS_LAB_HOME: path.join(work, 'import-only-home') },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(() => readdirSync(quiet)).toThrow();
    expect(() => readdirSync(path.join(work, 'import-only-home'))).toThrow();
  }, 90_000);
});

describe('labSecretValues', () => {
  it('says which file is broken and how to recover', () => {
    const file = path.join(work, 'broken.json');
    writeFileSync(file, '{not json');
    expect(() => labSecretValues({}, file)).toThrow(`${file}: not valid JSON`);
    expect(() => labSecretValues({}, file)).toThrow('delete it to have new secrets generated');
  });

  it('refuses a stored value that is too short, naming the file and field', () => {
    const file = path.join(work, 'short.json');
    writeFileSync(file, JSON.stringify({ adminToken: 'x', trustKey: 'long-enough-trust-key-123' }));
    expect(() => labSecretValues({}, file)).toThrow(`${file}: adminToken is invalid`);
  });
});
