/**
 * Where cdk8s-plus-27 (frozen at 2.9.5: fixes land only in -28 and later) renders something a
 * kind cluster rejects or a laptop cannot afford. Each workaround is here, named after the
 * problem, so that a reader finds them in one place and the tests can prove each one is in
 * effect (charts/workarounds.test.ts).
 */
import { ApiObject, JsonPatch } from 'cdk8s';
import { type Capability, type Deployment, ImagePullPolicy } from 'cdk8s-plus-27';

/**
 * cdk8s-plus-27's `Capability` enum holds the kernel's names (`NET_ADMIN = "CAP_NET_ADMIN"`),
 * but a container spec wants them without the prefix: containerd prepends `CAP_` itself and
 * refuses `CAP_CAP_NET_ADMIN`, so the pod never starts. Fixed upstream by
 * cdk8s-team/cdk8s-plus#4267 ("remove CAP_ prefix from capabilities") in cdk8s-plus-28+, never
 * in -27. The security context passes the list through untouched, so stripping the prefix here
 * is enough. The enum also lacks `ALL` (added in -28 by cdk8s-team/cdk8s-plus#4064).
 */
export function kubernetesCapability(capability: Capability | 'ALL'): Capability {
  return capability.replace(/^CAP_/, '') as Capability;
}

/**
 * cdk8s-plus-27's pod properties have no `shareProcessNamespace` (its PodProps stop at
 * hostNetwork, dns, securityContext and the like), though the L1 PodSpec has the field. The
 * backends need it so that the fault sidecar can SIGKILL the service (fault-sidecar.sh
 * kill-main), so the field is patched into the Deployment's pod template.
 */
export function shareProcessNamespace(deployment: Deployment): void {
  ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/shareProcessNamespace', true));
}

/**
 * cdk8s-plus-27 defaults every container to `imagePullPolicy: Always`, so the kubelet asks a
 * registry for an image that exists only inside the kind node (`kind load docker-image`) and
 * the pod sits in ErrImagePull. Every container of the lab says IfNotPresent.
 */
export const LAB_IMAGE_PULL_POLICY = ImagePullPolicy.IF_NOT_PRESENT;

/**
 * cdk8s-plus-27 adds a TCP startup probe to every container whose `portNumber` is set, and
 * offers no way to say "none" (`startup: undefined` means "the default"). A TCP probe passes as
 * soon as the port is bound, which says nothing the HTTP probes do not; the lab's containers
 * therefore declare their port through `ports` (which does not trigger the default) and get
 * their probes from `/readyz` and `/healthz` instead. Probes that name a port must then give it
 * explicitly, since the probe's default port is `portNumber`.
 */
export function containerPorts(port: number): { ports: { number: number; name: string }[] } {
  return { ports: [{ number: port, name: 'http' }] };
}
