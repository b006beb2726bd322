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
import { createLabPki, PKI_VALIDITY_DAYS, pkiExpiry } from '../lab/pki.ts';
import { schemaErrors } from './kubernetes-schema.ts';
import { labSecretValues, placeholderPki } from './lab-secret.ts';

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
  delete clean.TRUST_MODE;
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
/** The TRUST_MODE of every gateway and backend container. */
const trustModesOf = (manifests: Manifest[]) =>
  new Set(
    manifests
      .filter(
        (m) =>
          m.kind === 'Deployment' && m.metadata.labels['app.kubernetes.io/component'] !== 'observability',
      )
      .map(
        (m) => m.spec.template.spec.containers[0].env.find((e: Manifest) => e.name === 'TRUST_MODE')?.value,
      ),
  );

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
    expect(secretOf(manifests)).toMatchObject({
      CHAOS_ADMIN_TOKEN: stored.adminToken,
      TRUST_KEY: stored.trustKey,
      TLS_CA: stored.pki.ca,
      TLS_GATEWAY_CERT: stored.pki.gateway.cert,
      TLS_GATEWAY_KEY: stored.pki.gateway.key,
      TLS_COIN_CERT: stored.pki.backends.coin.cert,
      TLS_COIN_KEY: stored.pki.backends.coin.key,
    });
    expect(stored.pki.ca).toContain('-----BEGIN CERTIFICATE-----');
    expect(stored.adminToken).not.toBe(stored.trustKey);
    expect(trustModesOf(manifests)).toEqual(new Set(['half']));
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
    expect(secretOf(manifests)).toEqual({ ...first, TRUST_KEY: trustKey });
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

  it('takes the trust mode from TRUST_MODE, and refuses one that is none of the three', async () => {
    const full = await run('npm', ['run', '--silent', 'synth'], {
      CDK8S_OUTDIR: outdir,
      CHAOS_LAB_HOME: home,
      TRUST_MODE: 'full',
    });
    expect(full.code, full.stderr).toBe(0);
    expect(trustModesOf(readManifests(outdir))).toEqual(new Set(['full']));

    const refused = await run('npm', ['run', '--silent', 'synth'], {
      CDK8S_OUTDIR: path.join(work, 'refused-trust'),
      CHAOS_LAB_HOME: home,
      TRUST_MODE: 'mutual',
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('TRUST_MODE="mutual" is not a trust mode: use zero, half, full');
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
  const DAY_MS = 86_400_000;
  const stored = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

  it('says which file is broken and how to recover', async () => {
    const file = path.join(work, 'broken.json');
    writeFileSync(file, '{not json');
    await expect(labSecretValues({}, file)).rejects.toThrow(`${file}: not valid JSON`);
    await expect(labSecretValues({}, file)).rejects.toThrow('delete it to have new secrets generated');
  });

  it('refuses a stored value that is too short, naming the file and field', async () => {
    const file = path.join(work, 'short.json');
    writeFileSync(file, JSON.stringify({ adminToken: 'x', trustKey: 'long-enough-trust-key-123' }));
    await expect(labSecretValues({}, file)).rejects.toThrow(`${file}: adminToken is invalid`);
  });

  it('generates the PKI once into the file (mode 0600) and gives the same one on the next call', async () => {
    const file = path.join(work, 'pki-kept', 'kind-secrets.json');
    const first = await labSecretValues({}, file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(stored(file).pki).toEqual(first.pki);
    const expiry = pkiExpiry(first.pki)?.getTime() ?? 0;
    expect(expiry - Date.now()).toBeGreaterThan((PKI_VALIDITY_DAYS - 1) * DAY_MS);
    const written = readFileSync(file, 'utf8');
    const second = await labSecretValues({}, file);
    expect(second).toEqual(first);
    expect(readFileSync(file, 'utf8')).toBe(written);
  });

  it('keeps the stored tokens when it adds a PKI to a file that has none (written before full trust)', async () => {
    const file = path.join(work, 'no-pki.json');
    const tokens = { adminToken: 'an-admin-token-kept-0123', trustKey: 'a-trust-key-kept-0123456' };
    writeFileSync(file, JSON.stringify(tokens));
    const values = await labSecretValues({}, file);
    expect(values).toMatchObject(tokens);
    expect(pkiExpiry(values.pki)).toBeDefined();
    expect(stored(file)).toEqual({ ...tokens, pki: values.pki });
  });

  it('makes a new PKI when the stored one expires within 30 days, and keeps one that does not', async () => {
    const file = path.join(work, 'expiring.json');
    const tokens = { adminToken: 'an-admin-token-kept-0123', trustKey: 'a-trust-key-kept-0123456' };
    // Made PKI_VALIDITY_DAYS - 20 days ago: it expires in 20 days.
    const old = await createLabPki(new Date(Date.now() - (PKI_VALIDITY_DAYS - 20) * DAY_MS));
    writeFileSync(file, JSON.stringify({ ...tokens, pki: old }));
    const renewed = await labSecretValues({}, file);
    expect(renewed.pki.ca).not.toBe(old.ca);
    expect(renewed).toMatchObject(tokens);
    expect(stored(file).pki).toEqual(renewed.pki);

    // 40 days before it expires, it is kept.
    const kept = await createLabPki(new Date(Date.now() - (PKI_VALIDITY_DAYS - 40) * DAY_MS));
    writeFileSync(file, JSON.stringify({ ...tokens, pki: kept }));
    expect((await labSecretValues({}, file)).pki).toEqual(kept);
    // …until the clock says it is within 30 days.
    const later = new Date(Date.now() + 11 * DAY_MS);
    expect((await labSecretValues({}, file, { now: later })).pki.ca).not.toBe(kept.ca);
  });

  it('makes a new PKI when the stored one cannot be read or lacks a backend', async () => {
    const file = path.join(work, 'unreadable.json');
    const tokens = { adminToken: 'an-admin-token-kept-0123', trustKey: 'a-trust-key-kept-0123456' };
    // PEM-shaped, but no certificate.
    const garbage = placeholderPki('garbage');
    writeFileSync(file, JSON.stringify({ ...tokens, pki: garbage }));
    const fromGarbage = await labSecretValues({}, file);
    expect(fromGarbage.pki.ca).not.toBe(garbage.ca);
    expect(pkiExpiry(fromGarbage.pki)).toBeDefined();

    const { coin: _coin, ...fourBackends } = fromGarbage.pki.backends;
    writeFileSync(file, JSON.stringify({ ...tokens, pki: { ...fromGarbage.pki, backends: fourBackends } }));
    const whole = await labSecretValues({}, file);
    expect(whole.pki.ca).not.toBe(fromGarbage.pki.ca);
    expect(whole.pki.backends.coin.cert).toContain('-----BEGIN CERTIFICATE-----');
  });
});
