/**
 * Helpers for reading synthesized manifests in tests: typed lookups that fail naming what was
 * missing, and label-selector matching as the API server does it.
 */
import { Testing } from 'cdk8s';
import { LabChart, type LabChartProps } from '../lab-chart.ts';
import { type LabSecretValues, placeholderPki } from '../lab-secret.ts';

/**
 * Fixed values, so the snapshot is stable; real synths take them from env or the lab's home. The
 * PKI is PEM-shaped text, not a PKI: a test that starts a process with it makes a real one.
 */
export const TEST_SECRETS = {
  adminToken: 'test-admin-token-0123456789',
  trustKey: 'test-trust-key-0123456789ab',
  pki: placeholderPki('test'),
} as const satisfies LabSecretValues;

// biome-ignore lint/suspicious/noExplicitAny: manifests are plain JSON read field by field
export type Manifest = Record<string, any>;

export function synthLab(props: Partial<LabChartProps> = {}): Manifest[] {
  const chart = new LabChart(Testing.app(), 'lab', { secrets: TEST_SECRETS, ...props });
  return Testing.synth(chart) as Manifest[];
}

export function find(manifests: readonly Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata?.name === name);
  if (!found) {
    const names = manifests.filter((m) => m.kind === kind).map((m) => m.metadata?.name);
    throw new Error(`no ${kind} named ${name}; the ${kind} objects are: ${names.join(', ') || 'none'}`);
  }
  return found;
}

export function ofKind(manifests: readonly Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind);
}

export function container(deployment: Manifest, name: string): Manifest {
  const containers = deployment.spec.template.spec.containers as Manifest[];
  const found = containers.find((c) => c.name === name);
  if (!found) {
    throw new Error(
      `Deployment ${deployment.metadata.name} has no container ${name}; it has ${containers.map((c) => c.name).join(', ')}`,
    );
  }
  return found;
}

interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { key: string; operator: string; values?: readonly string[] }[];
}

/** Whether `selector` selects an object with `labels` (an empty selector selects everything). */
export function selects(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = key in labels;
    const value = labels[key];
    const ok =
      operator === 'In'
        ? has && values.includes(value ?? '')
        : operator === 'NotIn'
          ? !has || !values.includes(value ?? '')
          : operator === 'Exists'
            ? has
            : operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}
