/**
 * Finding k6: the order of the places looked at, and what is passed over. The binaries here are tiny shell
 * scripts that answer `version` like k6 v1 and v2 do — run for real, as findK6 runs k6 — so each place can be
 * tried without installing several k6s. The scripts themselves run against the real k6 in test/e2e/k6.test.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findK6, K6_INSTALL_STEPS, K6NotFoundError, parseK6Version, whichK6 } from './k6-binary.ts';

let dir: string;
const bins = (name: string) => path.join(dir, name);

function fakeK6(where: string, versionLine: string): string {
  mkdirSync(where, { recursive: true });
  const file = path.join(where, 'k6');
  writeFileSync(file, `#!/bin/sh\n[ "$1" = version ] && echo '${versionLine}' && exit 0\nexit 3\n`);
  chmodSync(file, 0o755);
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'chaos-lab-k6-binary-'));
  fakeK6(bins('v2'), 'k6 v2.2.0 (go1.26.8, linux/amd64)');
  fakeK6(bins('v1'), 'k6 v1.4.2 (go1.24.1, linux/amd64)');
  fakeK6(bins('repo/.tools/bin'), 'k6 v2.1.0 (go1.25.3, linux/amd64)');
  fakeK6(bins('other'), 'something else entirely');
  mkdirSync(bins('empty-repo'));
  mkdirSync(bins('dir-named-k6/k6'), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseK6Version', () => {
  it('reads the version from `k6 version`', () => {
    expect(parseK6Version('k6 v2.2.0 (go1.26.8, linux/amd64)\n')).toBe('v2.2.0');
    expect(parseK6Version('k6 v2.0.0-rc1 (commit/abc, go1.25.0)')).toBe('v2.0.0-rc1');
    expect(parseK6Version('Usage: …')).toBeUndefined();
  });
});

describe('findK6', () => {
  it('takes CHAOS_LAB_K6 first, and only it', async () => {
    const env = { CHAOS_LAB_K6: path.join(bins('v2'), 'k6'), PATH: bins('repo/.tools/bin') };
    await expect(findK6({ env, repoRoot: bins('repo') })).resolves.toEqual({
      path: path.join(bins('v2'), 'k6'),
      version: 'v2.2.0',
      source: 'CHAOS_LAB_K6',
    });
    const v1 = { CHAOS_LAB_K6: path.join(bins('v1'), 'k6'), PATH: bins('v2') };
    await expect(findK6({ env: v1, repoRoot: bins('repo') })).rejects.toThrow(
      `k6 v2 was not found (CHAOS_LAB_K6 ${path.join(bins('v1'), 'k6')} is k6 v1.4.2; the lab's scripts need k6 v2)`,
    );
    await expect(findK6({ env: { CHAOS_LAB_K6: bins('nothing') }, repoRoot: bins('repo') })).rejects.toThrow(
      `CHAOS_LAB_K6=${bins('nothing')} is not an executable file`,
    );
  });

  it('then the first k6 on PATH, then .tools/bin/k6 — passing over a k6 v1', async () => {
    const pathList = [bins('dir-named-k6'), bins('v2'), bins('v1')].join(path.delimiter);
    await expect(findK6({ env: { PATH: pathList }, repoRoot: bins('repo') })).resolves.toMatchObject({
      source: 'PATH',
      version: 'v2.2.0',
    });
    await expect(findK6({ env: { PATH: bins('v1') }, repoRoot: bins('repo') })).resolves.toEqual({
      path: path.join(bins('repo'), '.tools', 'bin', 'k6'),
      version: 'v2.1.0',
      source: '.tools/bin/k6',
    });
  });

  it('says what it looked at and how to install k6 when none will do', async () => {
    const error = await findK6({
      env: { PATH: [bins('v1'), bins('other')].join(path.delimiter) },
      repoRoot: bins('empty-repo'),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(K6NotFoundError);
    expect((error as K6NotFoundError).looked).toEqual([
      'CHAOS_LAB_K6 is not set',
      `PATH ${path.join(bins('v1'), 'k6')} is k6 v1.4.2; the lab's scripts need k6 v2`,
      'no .tools/bin/k6',
    ]);
    expect((error as Error).message).toContain('https://grafana.com/docs/k6/latest/set-up/install-k6/');
    expect((error as Error).message).toContain('npm run tools:k6');
    expect(K6_INSTALL_STEPS).toHaveLength(3);

    const other = await findK6({ env: { PATH: bins('other') }, repoRoot: bins('empty-repo') }).catch(
      (e: K6NotFoundError) => e.looked,
    );
    expect(other).toContain(
      `PATH ${path.join(bins('other'), 'k6')} is not k6 (\`version\` said "something else entirely")`,
    );
  });

  it('whichK6 skips directories and non-executables', () => {
    expect(whichK6([bins('dir-named-k6'), '', bins('v2')].join(path.delimiter))).toBe(
      path.join(bins('v2'), 'k6'),
    );
    expect(whichK6(bins('empty-repo'))).toBeUndefined();
  });
});
