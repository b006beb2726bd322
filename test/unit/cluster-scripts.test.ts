/**
 * The test cluster's scripts (tools/cluster/): shellcheck-clean, and what they promise about the
 * machine they run on — written down here so that a change that breaks a promise fails before it
 * ever runs as root: the pods' traffic kept on the machine, DNS with no upstream, nothing pulled.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lab/local/state.ts';

const DIR = path.join(REPO_ROOT, 'tools', 'cluster');
const scripts = [
  ...readdirSync(DIR)
    .filter((f) => f.endsWith('.sh'))
    .map((f) => path.join('tools', 'cluster', f)),
  ...readdirSync(path.join(DIR, 'images'))
    .filter((f) => f.endsWith('.sh'))
    .map((f) => path.join('tools', 'cluster', 'images', f)),
];
const read = (...parts: string[]) => readFileSync(path.join(DIR, ...parts), 'utf8');

describe('tools/cluster scripts', () => {
  const shellcheck = spawnSync('shellcheck', ['--version']);
  // CI installs shellcheck (.ci/run), so there a missing one is a failure, not a skip.
  const missing = shellcheck.status !== 0 && !process.env.CI;
  if (missing)
    console.log('skipping the shellcheck test: shellcheck is not installed (apt-get install shellcheck)');

  it.skipIf(missing)('pass shellcheck, following what they source', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(10);
    const run = spawnSync('shellcheck', ['-x', ...scripts], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it("keep the pods' traffic on this machine: a drop rule for pod packets bound anywhere but the pods' bridge", () => {
    const up = read('up.sh');
    expect(up).toMatch(/iptables -t mangle -I FORWARD 1 -s "\$POD_CIDR" ! -o "\$POD_BRIDGE" .* -j DROP/);
    expect(read('down.sh')).toMatch(/iptables -t mangle -D FORWARD -s "\$POD_CIDR" ! -o "\$POD_BRIDGE"/);
    // Masquerading would give pod packets the machine's address on its way out.
    expect(JSON.parse(read('conf', 'cni.conflist')).plugins[0].ipMasq).toBe(false);
  });

  it('give the cluster a DNS with no upstream, and images that are never pulled', () => {
    const coredns = read('conf', 'coredns.yaml');
    expect(coredns).toContain('kubernetes cluster.local');
    expect(coredns).not.toMatch(/^\s*forward\b/m);
    expect(coredns).toContain('imagePullPolicy: Never');
    // The slim CoreDNS has no forward plugin to turn on by mistake.
    expect(read('coredns', 'main.go')).not.toContain('plugin/forward');
    expect(read('conf', 'containerd.toml')).toContain('sandbox_image = "localhost/pause:chaos-lab"');
  });

  it('restore what they change on the machine: forwarding settings as they were', () => {
    expect(read('up.sh')).toMatch(/ip_forward=\$\(cat \/proc\/sys\/net\/ipv4\/ip_forward\)/);
    expect(read('down.sh')).toMatch(/sysctl -qw net\.ipv4\.ip_forward="\$value"/);
  });
});
