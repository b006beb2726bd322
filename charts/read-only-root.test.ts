/**
 * The main container's security context, tried for real: a backend started as the chart's
 * user on a read-only root filesystem, with only the chart's emptyDir mount paths writable
 * (tmpfs in a mount namespace of its own), must become ready — and tsx must be using the
 * writable /tmp for its cache, the reason that emptyDir exists.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { container, find, type Manifest, synthLab } from './__fixtures__/manifests.ts';

const REPO = path.join(import.meta.dirname, '..');

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to make a mount namespace with a read-only root';
  const probe = spawnSync('unshare', ['-m', 'true']);
  if (probe.status !== 0) return `unshare -m does not work here: ${probe.stderr.toString().trim()}`;
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  return undefined;
}

describe('the main container on a read-only root filesystem', () => {
  const reason = skipReason();
  if (reason) console.log(`skipping the read-only root test: ${reason}`);

  it.skipIf(reason !== undefined)(
    'serves /readyz as user 10001 with only the emptyDir paths writable',
    () => {
      const deployment = find(synthLab(), 'Deployment', 'account');
      const main = container(deployment, 'account');
      const volumes = deployment.spec.template.spec.volumes as Manifest[];
      const writable = (main.volumeMounts as Manifest[])
        .filter((m) => volumes.find((v) => v.name === m.name)?.emptyDir)
        .map((m) => m.mountPath as string);
      expect(writable).toEqual(['/tmp']);
      const uid = main.securityContext.runAsUser as number;
      const gid = main.securityContext.runAsGroup as number;

      // Inside the namespace: / read-only, a fresh tmpfs at every emptyDir path, the service
      // started as the chart's user; then /readyz is asked from the same shell, and what tsx
      // left in /tmp is listed. The repository is seen through a read-only bind mount on a fresh
      // directory under /var/tmp: a clone under /tmp itself would be hidden by the tmpfs.
      const repo = mkdtempSync('/var/tmp/chaos-lab-repo-');
      const script = [
        'set -e',
        'mount --make-rprivate /',
        `mount --bind ${JSON.stringify(REPO)} ${repo}`,
        `mount -o remount,bind,ro ${repo}`,
        'mount -o remount,bind,ro /',
        ...writable.map((p) => `mount -t tmpfs -o mode=1777,size=64m tmpfs ${p}`),
        `cd ${repo}`,
        'if touch ./.read-only-probe 2>/dev/null; then echo "root is writable"; exit 3; fi',
        `setpriv --reuid=${uid} --regid=${gid} --clear-groups env PORT=0 TRUST_MODE=zero node --import tsx services/main.ts account >/tmp/service.log 2>&1 &`,
        'pid=$!',
        'i=0; while ! grep -q listening /tmp/service.log; do i=$((i+1)); [ $i -lt 300 ] || { cat /tmp/service.log; exit 4; }; sleep 0.1; done',
        `url=$(sed -n 's/.*"url":"\\([^"]*\\)".*/\\1/p' /tmp/service.log | head -n 1)`,
        `node -e "fetch(process.argv[1] + '/readyz').then(r => { console.log('readyz=' + r.status); })" "$url"`,
        'kill $pid; wait $pid || true',
        `ls -d /tmp/tsx-${uid} && echo "tsx-cache=$(ls /tmp/tsx-${uid} | wc -l)"`,
      ].join('\n');
      const run = spawnSync('unshare', ['-m', 'sh', '-c', script], { encoding: 'utf8', timeout: 90_000 });
      rmdirSync(repo);
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain('readyz=200');
      const cached = Number(/tsx-cache=(\d+)/.exec(run.stdout)?.[1] ?? 0);
      expect(cached, 'files tsx cached in the writable /tmp').toBeGreaterThan(0);
    },
    120_000,
  );
});
