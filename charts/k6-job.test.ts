/**
 * The k6 Job: valid against the Kubernetes schema, safe (non-root, read-only root, small
 * requests, no retries), pointed at the lab's real gateway Services, with every module the script
 * imports beside it, and let through by the lab's NetworkPolicies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STRATEGIES } from '../services/topology.ts';
import { find, type Manifest, ofKind, synthLab } from './__fixtures__/manifests.ts';
import { K6_IMAGE, k6JobManifests, scriptFiles } from './k6-job.ts';
import { schemaErrors } from './kubernetes-schema.ts';

const LOAD = path.join(import.meta.dirname, '..', 'experiments', 'load');
const manifests = k6JobManifests() as Manifest[];
const job = find(manifests, 'Job', 'k6-video-page');
const pod = job.spec.template.spec;
const k6 = pod.containers[0];

/** `-e NAME=value` pairs of the k6 command line. */
function envArgs(args: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  args.forEach((arg, i) => {
    if (arg === '-e') {
      const [key, ...value] = (args[i + 1] as string).split('=');
      env[key as string] = value.join('=');
    }
  });
  return env;
}

describe('K6JobChart', () => {
  it('passes the Kubernetes schema', async () => {
    expect(manifests.map((m) => m.kind)).toEqual(['ConfigMap', 'Job']);
    expect((await Promise.all(manifests.map(schemaErrors))).flat()).toEqual([]);
  });

  it('runs the video-page script once, with no retries, and cleans up after itself', () => {
    expect(job.metadata.namespace).toBe('chaos-lab');
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.ttlSecondsAfterFinished).toBe(600);
    expect(pod.restartPolicy).toBe('Never');
    expect(k6.image).toBe(K6_IMAGE);
    expect(K6_IMAGE).toMatch(/^grafana\/k6:2\.\d+\.\d+$/);
    expect(k6.imagePullPolicy).toBe('IfNotPresent');
    expect(k6.args.slice(0, 2)).toEqual(['run', '--no-usage-report']);
    expect(k6.args.at(-1)).toBe('/scripts/video-page.ts');
  });

  it('runs as non-root on a read-only root filesystem, writing only to an emptyDir, with small requests', () => {
    expect(k6.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(k6.securityContext.runAsUser).toBeGreaterThan(0);
    const summary = envArgs(k6.args).SUMMARY as string;
    const writable = k6.volumeMounts.find((m: Manifest) => summary.startsWith(`${m.mountPath}/`));
    expect(writable, `no mount holds ${summary}`).toBeDefined();
    expect(pod.volumes.find((v: Manifest) => v.name === writable.name).emptyDir).toBeDefined();
    expect(k6.resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
  });

  it("points at the gateway Services the lab chart creates, on their ports, with the script's variables", () => {
    const env = envArgs(k6.args);
    expect(Object.keys(env).sort()).toEqual(['DURATION', 'GATEWAYS', 'RATE', 'SUMMARY']);
    expect(env.RATE).toBe('30');
    expect(env.DURATION).toBe('30s');
    const lab = synthLab();
    const gateways = (env.GATEWAYS as string).split(',').map((entry) => entry.split('='));
    expect(gateways.map(([name]) => name)).toEqual([...STRATEGIES]);
    for (const [name, url] of gateways) {
      const { hostname, port } = new URL(url as string);
      const service = find(lab, 'Service', hostname);
      expect(service.metadata.labels['chaos-lab.dev/strategy']).toBe(name);
      expect(service.spec.ports.map((p: Manifest) => p.port)).toContain(Number(port));
    }
    // Every variable the Job sets is one the script documents and reads.
    const script = readFileSync(path.join(LOAD, 'video-page.ts'), 'utf8');
    for (const key of Object.keys(env)) {
      expect(script).toMatch(new RegExp(`^ \\* {3}${key} `, 'm'));
      const reads =
        key === 'GATEWAYS' ? /gatewaysFrom\(__ENV\)/ : new RegExp(`__ENV\\.${key}\\b|__ENV, '${key}'`);
      expect(script).toMatch(reads);
    }
  });

  it('takes its rate, duration and gateways from the props', () => {
    const custom = k6JobManifests({
      rate: 12.5,
      duration: '2m',
      gateways: [{ name: 'resilient', url: 'http://gateway-resilient:8080' }],
    }) as Manifest[];
    const env = envArgs(find(custom, 'Job', 'k6-video-page').spec.template.spec.containers[0].args);
    expect(env).toMatchObject({
      RATE: '12.5',
      DURATION: '2m',
      GATEWAYS: 'resilient=http://gateway-resilient:8080',
    });
  });

  it('puts every module the script imports beside it, as the files are in the repository', () => {
    const configMap = find(manifests, 'ConfigMap', 'k6-video-page-scripts');
    expect(Object.keys(configMap.data).sort()).toEqual([
      'config.ts',
      'page.ts',
      'summary.ts',
      'video-page.ts',
    ]);
    for (const [name, text] of Object.entries(configMap.data)) {
      expect(text).toBe(readFileSync(path.join(LOAD, name), 'utf8'));
    }
    const mount = k6.volumeMounts.find((m: Manifest) => m.mountPath === '/scripts');
    expect(mount.readOnly).toBe(true);
    expect(pod.volumes.find((v: Manifest) => v.name === mount.name).configMap.name).toBe(
      configMap.metadata.name,
    );
    expect(() => scriptFiles(LOAD, 'no-such-script.ts')).toThrow('K6Job script: cannot read');
  });

  it("is let in by every gateway's NetworkPolicy: a rule on the gateway port with no `from`", () => {
    const lab = synthLab();
    const k6Labels = job.spec.template.metadata.labels as Record<string, string>;
    for (const strategy of STRATEGIES) {
      const service = find(lab, 'Service', `gateway-${strategy}`);
      const policies = ofKind(lab, 'NetworkPolicy').filter((p) =>
        Object.entries(p.spec.podSelector.matchLabels ?? {}).every(
          ([key, value]) => service.spec.selector[key] === value,
        ),
      );
      const port = service.spec.ports[0].port;
      const letsK6In = policies.some((p) =>
        (p.spec.ingress ?? []).some(
          (rule: Manifest) =>
            rule.from === undefined && (rule.ports ?? []).some((rp: Manifest) => rp.port === port),
        ),
      );
      expect(
        letsK6In,
        `no policy lets a pod labelled ${JSON.stringify(k6Labels)} reach gateway-${strategy}:${port}`,
      ).toBe(true);
    }
  });
});
