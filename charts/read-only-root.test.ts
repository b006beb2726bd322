/**
 * A backend pod's node processes under the chart's security context, tried for real: the
 * service and its fault proxy started as the chart's user, with the chart's command and
 * environment, from the lab's build (the JavaScript the Dockerfile builds the same way, alone in
 * its folder as in the image: no node_modules, no sources), on a read-only root filesystem with
 * only their own emptyDir at /tmp writable (tmpfs in mount namespaces of their own), in one
 * network namespace as a pod's containers are. Both must become ready, a call on the proxy's
 * data port (where the Service sends the gateways) must reach the service, and nothing may be
 * written to /tmp: nothing is compiled when the processes start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ensureLabBuild } from '../lab/build/lab-build.ts';
import { createLabPki } from '../lab/pki.ts';
import { container, find, type Manifest, synthLab, TEST_SECRETS } from './__fixtures__/manifests.ts';

/** The Dockerfile's ENTRYPOINT (charts/image.test.ts checks it says so), for a container without `command`. */
const IMAGE_ENTRYPOINT = ['node', 'services/main.js'];
const POD_NAME = 'account-6b8f9c7d4-x7k2p';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to make mount, network and PID namespaces';
  const probe = spawnSync('unshare', ['-m', '-n', '-p', '-f', '--kill-child', 'true']);
  if (probe.status !== 0) return `unshare -m -n -p does not work here: ${probe.stderr.toString().trim()}`;
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  if (spawnSync('ip', ['-V']).status !== 0) return 'ip (iproute2) is not installed';
  return undefined;
}

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** The container's environment with what the kubelet would put in place of each reference. */
function environment(c: Manifest, secret: Readonly<Record<string, string>>): string[] {
  return (c.env as Manifest[]).map((e) => {
    const value =
      e.value ??
      (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name'
        ? POD_NAME
        : e.valueFrom?.secretKeyRef
          ? secret[e.valueFrom.secretKeyRef.key]
          : undefined);
    if (value === undefined) throw new Error(`${c.name}: no stand-in for env ${e.name}`);
    return `${e.name}=${value}`;
  });
}

describe('a backend pod on a read-only root filesystem', () => {
  const reason = skipReason();
  if (reason) console.log(`skipping the read-only root test: ${reason}`);

  it.skipIf(reason !== undefined)(
    'serves through its fault proxy as user 10001, each process with only its own /tmp writable',
    async () => {
      // A real PKI: the service loads its TLS material at start, in every trust mode.
      const lab = synthLab({ secrets: { ...TEST_SECRETS, pki: await createLabPki() } });
      const secret = find(lab, 'Secret', 'chaos-lab-secrets').stringData as Record<string, string>;
      const deployment = find(lab, 'Deployment', 'account');
      const volumes = deployment.spec.template.spec.volumes as Manifest[];
      const processes = ['account', 'fault-proxy'].map((name) => container(deployment, name));
      for (const c of processes) {
        const writable = (c.volumeMounts as Manifest[])
          .filter((m) => volumes.find((v) => v.name === m.name)?.emptyDir)
          .map((m) => m.mountPath as string);
        expect(writable, c.name).toEqual(['/tmp']);
      }
      const env = (c: Manifest, name: string) =>
        environment(c, secret)
          .find((e) => e.startsWith(`${name}=`))
          ?.slice(name.length + 1);
      const [main, proxy] = processes as [Manifest, Manifest];
      const servicePort = env(main, 'PORT');
      const dataPort = env(proxy, 'LISTEN_PORT');
      const adminPort = env(proxy, 'ADMIN_PORT');

      // Inside the namespaces: / read-only, the loopback up, a tmpfs per container (under
      // /mnt, bound at /tmp in a mount namespace of the container's own), each process started
      // as the chart's user with the chart's command and environment; then the readiness of
      // both, and the service's through the proxy's data port. The build is seen through a
      // read-only bind mount on a fresh directory under /var/tmp, the image's /app.
      const build = await ensureLabBuild();
      const app = mkdtempSync('/var/tmp/chaos-lab-app-');
      const start = (c: Manifest) => {
        const command = [
          ...((c.command as string[] | undefined) ?? IMAGE_ENTRYPOINT),
          ...((c.args as string[]) ?? []),
        ];
        const user = `--reuid=${c.securityContext.runAsUser} --regid=${c.securityContext.runAsGroup} --clear-groups`;
        const inner = `mount --bind /mnt/${c.name} /tmp && exec setpriv ${user} env ${environment(c, secret).map(quote).join(' ')} ${command.map(quote).join(' ')}`;
        return `unshare -m sh -c ${quote(inner)} >/mnt/${c.name}.log 2>&1 & pids="$pids $!"`;
      };
      const waitReady = [
        'const deadline = Date.now() + 90_000;',
        'for (const url of process.argv.slice(1)) {',
        '  for (;;) {',
        '    const status = await fetch(url).then((r) => r.status, () => 0);',
        "    if (status === 200) { console.log('ready ' + url); break; }",
        "    if (Date.now() > deadline) { console.log('not ready ' + url + ': ' + status); process.exit(4); }",
        '    await new Promise((r) => setTimeout(r, 200));',
        '  }',
        '}',
      ].join('\n');
      const script = [
        'set -e',
        'mount --make-rprivate /',
        `mount --bind ${quote(build.dir)} ${app}`,
        `mount -o remount,bind,ro ${app}`,
        'mount -t tmpfs -o mode=0755,size=256m tmpfs /mnt',
        ...processes.map((c) => `mkdir -m 1777 /mnt/${c.name}`),
        'mount -o remount,bind,ro /',
        'ip link set lo up',
        `cd ${app}`,
        'if touch ./.read-only-probe 2>/dev/null; then echo "root is writable"; exit 3; fi',
        "pids=''",
        ...processes.map(start),
        `node --input-type=module -e ${quote(waitReady)} http://127.0.0.1:${servicePort}/readyz http://127.0.0.1:${adminPort}/readyz http://127.0.0.1:${dataPort}/readyz || { tail -n 20 /mnt/*.log; exit 4; }`,
        'kill $pids || true; wait || true',
        ...processes.map((c) => `echo "tmp ${c.name}=$(ls -A /mnt/${c.name} | wc -l)"`),
      ].join('\n');
      // A PID namespace of its own too, whose init is the shell: however the shell ends (a
      // failure, the timeout's SIGTERM), the kernel ends the processes it started.
      const run = spawnSync('unshare', ['-m', '-n', '-p', '-f', '--kill-child', 'sh', '-c', script], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      rmdirSync(app);
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(`ready http://127.0.0.1:${servicePort}/readyz`);
      expect(run.stdout).toContain(`ready http://127.0.0.1:${adminPort}/readyz`);
      // The Service's path: the proxy's data port, relayed to the service on 127.0.0.1.
      expect(run.stdout).toContain(`ready http://127.0.0.1:${dataPort}/readyz`);
      for (const c of processes) {
        const written = Number(new RegExp(`tmp ${c.name}=(\\d+)`).exec(run.stdout)?.[1] ?? -1);
        expect(written, `files written to ${c.name}'s /tmp`).toBe(0);
      }
    },
    150_000,
  );
});
