/**
 * The API resources the fake API server serves: the kinds `npm run synth` emits, plus Pod, Node, Job
 * and Lease (the run lock of the Kubernetes target).
 * Discovery (`GET /api/v1`, `GET /apis/apps/v1`, …) answers from this table, because client-node's
 * KubernetesObjectApi asks it whether a kind is namespaced and what its plural is before every call.
 */

export interface ApiResource {
  /** `v1`, `apps/v1`, `rbac.authorization.k8s.io/v1`. */
  readonly groupVersion: string;
  readonly kind: string;
  /** Lower-case plural used in paths: `deployments`. */
  readonly plural: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: readonly ApiResource[] = [
  { groupVersion: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, shortNames: ['ns'] },
  { groupVersion: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  { groupVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'] },
  { groupVersion: 'v1', kind: 'Service', plural: 'services', namespaced: true, shortNames: ['svc'] },
  {
    groupVersion: 'v1',
    kind: 'ServiceAccount',
    plural: 'serviceaccounts',
    namespaced: true,
    shortNames: ['sa'],
  },
  { groupVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true, shortNames: ['po'] },
  { groupVersion: 'v1', kind: 'Node', plural: 'nodes', namespaced: false, shortNames: ['no'] },
  {
    groupVersion: 'apps/v1',
    kind: 'Deployment',
    plural: 'deployments',
    namespaced: true,
    shortNames: ['deploy'],
  },
  {
    groupVersion: 'apps/v1',
    kind: 'ReplicaSet',
    plural: 'replicasets',
    namespaced: true,
    shortNames: ['rs'],
  },
  { groupVersion: 'batch/v1', kind: 'Job', plural: 'jobs', namespaced: true },
  { groupVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true },
  {
    groupVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    namespaced: true,
  },
  { groupVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', plural: 'roles', namespaced: true },
  {
    groupVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    plural: 'rolebindings',
    namespaced: true,
  },
  {
    groupVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    plural: 'clusterroles',
    namespaced: false,
  },
  {
    groupVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    plural: 'clusterrolebindings',
    namespaced: false,
  },
];

export function resourceByPlural(groupVersion: string, plural: string): ApiResource | undefined {
  return RESOURCES.find((r) => r.groupVersion === groupVersion && r.plural === plural);
}

export function resourceByKind(apiVersion: string, kind: string): ApiResource | undefined {
  return RESOURCES.find((r) => r.groupVersion === apiVersion && r.kind === kind);
}

/** `metav1.APIResourceList` as the real server shapes it, or undefined for an unknown group/version. */
export function apiResourceList(groupVersion: string): Record<string, unknown> | undefined {
  const resources = RESOURCES.filter((r) => r.groupVersion === groupVersion);
  if (resources.length === 0) return undefined;
  const list: Record<string, unknown>[] = [];
  for (const r of resources) {
    list.push({
      name: r.plural,
      singularName: r.kind.toLowerCase(),
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
      ...(r.shortNames ? { shortNames: r.shortNames } : {}),
    });
    if (r.kind === 'Pod') {
      list.push(subresource('pods/exec', 'PodExecOptions', ['create', 'get']));
      list.push(subresource('pods/portforward', 'PodPortForwardOptions', ['create', 'get']));
      list.push(subresource('pods/status', 'Pod', ['get', 'patch', 'update']));
    }
    if (r.kind === 'Deployment')
      list.push(subresource('deployments/status', 'Deployment', ['get', 'patch', 'update']));
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources: list };
}

function subresource(name: string, kind: string, verbs: string[]): Record<string, unknown> {
  return { name, singularName: '', namespaced: true, kind, verbs };
}

/** `GET /apis`: the APIGroupList of every group in the table. */
export function apiGroupList(): Record<string, unknown> {
  const groups = new Map<string, string>();
  for (const r of RESOURCES) {
    const [group, version] = r.groupVersion.split('/');
    if (version && group) groups.set(group, version);
  }
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups].map(([name, version]) => {
      const gv = { groupVersion: `${name}/${version}`, version };
      return { name, versions: [gv], preferredVersion: gv };
    }),
  };
}
