/**
 * Validation of synthesized objects against the Kubernetes OpenAPI schema, with
 * kubernetes-models 4.5.1, whose schemas are those of Kubernetes v1.33.0 (its changelog: "Update
 * schema version to v1.33.0"); the kind node image in kind/cluster.yaml is 1.33 to match.
 *
 * The model class is found from the object's own apiVersion and kind (`apps/v1` + `Deployment`
 * → `kubernetes-models/apps/v1`.Deployment), so any kind the charts emit is checked without a
 * list to keep up to date, and a kind with no stable schema is itself an error.
 *
 * What it catches: wrong types, missing required fields, values outside an enum, malformed
 * quantities and selectors. What it cannot: unknown fields (the OpenAPI v2 schemas allow extra
 * properties; the API server's strict field validation would refuse them) and anything only
 * the API server knows (a NodePort outside the cluster's range, a taken name).
 */

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

interface KubernetesObject {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly metadata?: { readonly name?: unknown; readonly namespace?: unknown };
}

/** `Deployment chaos-lab/account`, for messages. */
export function describeObject(manifest: KubernetesObject): string {
  const name = String(manifest.metadata?.name ?? '(no name)');
  const namespace = manifest.metadata?.namespace;
  return `${String(manifest.kind)} ${namespace ? `${String(namespace)}/` : ''}${name}`;
}

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  let group: Record<string, unknown>;
  try {
    group = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const model = group[kind];
  return typeof model === 'function' ? (model as ModelClass) : undefined;
}

/**
 * Every schema violation of one object, each naming the object and the field
 * (`Deployment chaos-lab/account: /spec/replicas must be integer`); empty when valid.
 */
export async function schemaErrors(manifest: KubernetesObject): Promise<string[]> {
  const what = describeObject(manifest);
  if (typeof manifest.apiVersion !== 'string' || typeof manifest.kind !== 'string') {
    return [`${what}: apiVersion and kind must be strings`];
  }
  const Model = await modelFor(manifest.apiVersion, manifest.kind);
  if (!Model) {
    return [`${what}: kubernetes-models has no schema for ${manifest.apiVersion} ${manifest.kind}`];
  }
  try {
    new Model(manifest).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: { instancePath?: string; message?: string }[] }).errors;
    if (!errors?.length) return [`${what}: ${(err as Error).message}`];
    return errors.map((e) => `${what}: ${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  }
}
