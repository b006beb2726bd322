/**
 * One test per cdk8s-plus-27 problem the charts work around: first that the problem is still
 * there in the library (so a fixed release tells us a workaround can go), then that the lab's
 * manifests do not have it.
 */
import { Testing } from 'cdk8s';
import { Capability, Deployment } from 'cdk8s-plus-27';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../services/topology.ts';
import { container, find, type Manifest, ofKind, synthLab } from './__fixtures__/manifests.ts';

const manifests = synthLab();
const allContainers = ofKind(manifests, 'Deployment').flatMap((d) =>
  (d.spec.template.spec.containers as Manifest[]).map((c) => ({ deployment: d, container: c })),
);
const isLabService = (d: Manifest) =>
  ['backend', 'gateway'].includes(d.metadata.labels['app.kubernetes.io/component']);

/** What cdk8s-plus-27 renders for a container left to its defaults, with a port. */
function libraryDefaults(): Manifest {
  const chart = Testing.chart();
  new Deployment(chart, 'plain', {
    containers: [
      {
        image: 'x',
        portNumber: 8080,
        securityContext: { capabilities: { add: [Capability.NET_ADMIN, Capability.KILL] } },
      },
    ],
  });
  const [deployment] = Testing.synth(chart) as Manifest[];
  return deployment?.spec.template.spec.containers[0];
}

describe('cdk8s-plus-27 workarounds', () => {
  const plain = libraryDefaults();

  it('renders NET_ADMIN and KILL, not CAP_NET_ADMIN and CAP_KILL (containerd refuses CAP_CAP_…)', () => {
    expect(plain.securityContext.capabilities.add).toEqual(['CAP_NET_ADMIN', 'CAP_KILL']);
    expect(JSON.stringify(manifests)).not.toContain('CAP_');
    for (const name of BACKENDS) {
      const sidecar = container(find(manifests, 'Deployment', name), 'fault-sidecar');
      expect(sidecar.securityContext.capabilities).toEqual({ add: ['NET_ADMIN', 'KILL'], drop: ['ALL'] });
    }
  });

  it('patches shareProcessNamespace into the backend pods, which the pod properties cannot say', () => {
    const chart = Testing.chart();
    new Deployment(chart, 'plain', {
      containers: [{ image: 'x' }],
      // @ts-expect-error: the field the lab needs is not among cdk8s-plus-27's pod properties
      shareProcessNamespace: true,
    });
    const [deployment] = Testing.synth(chart) as Manifest[];
    expect(deployment?.spec.template.spec.shareProcessNamespace).toBeUndefined();
    for (const name of BACKENDS) {
      expect(find(manifests, 'Deployment', name).spec.template.spec.shareProcessNamespace, name).toBe(true);
    }
  });

  it('pulls IfNotPresent, so images loaded with `kind load` are used', () => {
    expect(plain.imagePullPolicy).toBe('Always');
    for (const { deployment, container: c } of allContainers) {
      expect(c.imagePullPolicy, `${deployment.metadata.name}/${c.name}`).toBe('IfNotPresent');
    }
  });

  it('asks for laptop-sized resources, not 1 CPU and 512 MiB per container', () => {
    expect(plain.resources).toEqual({
      limits: { cpu: '1500m', memory: '2048Mi' },
      requests: { cpu: '1000m', memory: '512Mi' },
    });
    for (const { deployment, container: c } of allContainers) {
      const where = `${deployment.metadata.name}/${c.name}`;
      expect(
        c.resources.limits?.cpu,
        `${where}: no CPU limit (throttling would skew latency)`,
      ).toBeUndefined();
      expect(c.resources.requests.cpu, where).not.toBe('1000m');
      if (!isLabService(deployment)) continue;
      if (c.name === 'fault-sidecar') {
        expect(c.resources, where).toEqual({
          requests: { cpu: '5m', memory: '8Mi' },
          limits: { memory: '64Mi' },
        });
      } else if (c.name === 'fault-proxy') {
        expect(c.resources, where).toEqual({
          requests: { cpu: '10m', memory: '16Mi' },
          limits: { memory: '256Mi' },
        });
      } else {
        expect(c.resources, where).toEqual({
          requests: { cpu: '50m', memory: '80Mi' },
          limits: { memory: '384Mi' },
        });
      }
    }
    const requestedMillis = allContainers
      .map(
        ({ deployment, container: c }) =>
          deployment.spec.replicas * Number.parseInt(c.resources.requests.cpu, 10),
      )
      .reduce((a, b) => a + b, 0);
    expect(requestedMillis, 'CPU the whole lab requests, in millicores').toBeLessThanOrEqual(1_000);
    const requestedMebibytes = allContainers
      .map(
        ({ deployment, container: c }) =>
          deployment.spec.replicas * Number.parseInt(c.resources.requests.memory, 10),
      )
      .reduce((a, b) => a + b, 0);
    // colima's default VM has 2 GiB, of which the kubelet allocates about 1.85 GiB, and
    // kube-system requests about 300 MiB of that; `doctor` warns above 80% of it (1.5 GiB).
    expect(requestedMebibytes, 'memory the whole lab requests, in MiB').toBeLessThanOrEqual(1_500);
  });

  it('adds no TCP startup probe; the services start on /healthz over HTTP, then readiness and liveness probe /readyz and /healthz', () => {
    expect(plain.startupProbe?.tcpSocket).toEqual({ port: 8080 });
    for (const { deployment, container: c } of allContainers) {
      const where = `${deployment.metadata.name}/${c.name}`;
      expect(c.startupProbe?.tcpSocket, where).toBeUndefined();
      if (c.name === 'fault-sidecar') {
        expect(c.startupProbe, where).toBeUndefined();
        continue;
      }
      if (isLabService(deployment)) {
        // A slow cold start must not be killed by liveness (seen on the real test cluster).
        expect(c.startupProbe?.httpGet?.path, where).toBe('/healthz');
        expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold, where).toBeGreaterThanOrEqual(
          120,
        );
        expect(c.livenessProbe.initialDelaySeconds ?? 0, where).toBe(0);
      }
      expect(c.readinessProbe.httpGet, where).toBeDefined();
      expect(c.livenessProbe.httpGet, where).toBeDefined();
      if (!isLabService(deployment)) continue;
      expect(c.readinessProbe.httpGet.path, where).toBe('/readyz');
      expect(c.livenessProbe.httpGet.path, where).toBe('/healthz');
    }
  });

  it('keeps runAsNonRoot and the read-only root filesystem, with an emptyDir wherever a container writes', () => {
    expect(plain.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    for (const { deployment, container: c } of allContainers) {
      const where = `${deployment.metadata.name}/${c.name}`;
      expect(c.securityContext.readOnlyRootFilesystem, where).toBe(true);
      if (!isLabService(deployment)) continue;
      const writable = c.name === 'fault-sidecar' ? '/run/fault-sidecar' : '/tmp';
      const mount = (c.volumeMounts as Manifest[]).find((m) => m.mountPath === writable);
      const volume = (deployment.spec.template.spec.volumes as Manifest[]).find(
        (v) => v.name === mount?.name,
      );
      expect(volume?.emptyDir, `${where}: ${writable} is an emptyDir`).toBeDefined();
      if (c.name !== 'fault-sidecar') expect(c.securityContext.runAsNonRoot, where).toBe(true);
    }
  });

  it('opens the gateways to any source with a ports-only rule patched in, port included', () => {
    for (const policy of ofKind(manifests, 'NetworkPolicy').filter((p) =>
      /^gateway-.*-from-anywhere$/.test(p.metadata.name),
    )) {
      expect(policy.spec.ingress, policy.metadata.name).toEqual([
        { ports: [{ port: 8080, protocol: 'TCP' }] },
      ]);
    }
  });
});
