/** The kind configuration every kind command reads: its name, context and host ports. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_KIND_CONFIG,
  KIND_CONFIG_ENV,
  kindConfigFile,
  kindConfigFromEnv,
  readKindConfig,
} from './kind-config.ts';
import { gatewayUrls } from './kube-target.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function write(text: string): string {
  dir ??= mkdtempSync(path.join(tmpdir(), 'kind-config-'));
  const file = path.join(dir, 'cluster.yaml');
  writeFileSync(file, text);
  return file;
}

const HEADER = ['kind: Cluster', 'apiVersion: kind.x-k8s.io/v1alpha4'];

describe('readKindConfig', () => {
  it("reads the repository's kind/cluster.yaml: chaos-lab, the gateways on 127.0.0.1:18080-18082, Grafana on 3000", () => {
    const config = readKindConfig(DEFAULT_KIND_CONFIG);
    expect(config).toMatchObject({ name: 'chaos-lab', named: true, context: 'kind-chaos-lab' });
    expect(gatewayUrls(config)).toEqual({
      naive: 'http://127.0.0.1:18080',
      parallel: 'http://127.0.0.1:18081',
      resilient: 'http://127.0.0.1:18082',
    });
    expect(config.hostUrls.get(30_300)).toBe('http://127.0.0.1:3000');
  });

  it("follows the file's name; without one, the cluster is chaos-lab", () => {
    expect(readKindConfig(write([...HEADER, 'name: lab-two'].join('\n')))).toMatchObject({
      name: 'lab-two',
      named: true,
      context: 'kind-lab-two',
    });
    expect(readKindConfig(write(HEADER.join('\n')))).toMatchObject({
      name: 'chaos-lab',
      named: false,
      context: 'kind-chaos-lab',
    });
  });

  it('names the NodePort with no host port, and what to add', () => {
    const file = write(
      [
        ...HEADER,
        'nodes:',
        '  - role: control-plane',
        '    extraPortMappings:',
        '      - { containerPort: 30080, hostPort: 28080 }',
        '      - { containerPort: 30082, hostPort: 28082, listenAddress: "::" }',
      ].join('\n'),
    );
    const config = readKindConfig(file);
    expect(config.hostUrls.get(30_082)).toBe('http://[::1]:28082');
    expect(() => gatewayUrls(config)).toThrow(
      `${file}: no extraPortMappings entry maps a host port to NodePort 30081 (gateway-parallel)`,
    );
  });

  it('names a file that cannot be read, or is not a kind configuration', () => {
    const missing = path.join(tmpdir(), 'no-such-kind-config.yaml');
    expect(() => readKindConfig(missing)).toThrow(`cannot read the kind configuration ${missing}: ENOENT`);
    const broken = write('kind: Cluster\nnodes: [');
    expect(() => readKindConfig(broken)).toThrow(`cannot read the kind configuration ${broken}:`);
    const other = write('apiVersion: v1\nkind: Pod\n');
    expect(() => readKindConfig(other)).toThrow(`cannot read the kind configuration ${other}: it is not one`);
  });
});

describe('kindConfigFile', () => {
  it('takes the environment variable relative to the working directory, else kind/cluster.yaml', () => {
    expect(kindConfigFile({}, '/somewhere')).toBe(DEFAULT_KIND_CONFIG);
    expect(kindConfigFile({ [KIND_CONFIG_ENV]: 'my-kind.yaml' }, '/somewhere')).toBe(
      '/somewhere/my-kind.yaml',
    );
    expect(kindConfigFile({ [KIND_CONFIG_ENV]: '/etc/kind.yaml' }, '/somewhere')).toBe('/etc/kind.yaml');
    const file = write([...HEADER, 'name: from-env'].join('\n'));
    expect(kindConfigFromEnv({ [KIND_CONFIG_ENV]: 'cluster.yaml' }, path.dirname(file)).name).toBe(
      'from-env',
    );
  });
});
