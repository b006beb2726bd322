import { defineFaultKind } from '../kind.ts';

/**
 * A crash: the instance's process is SIGKILLed — by the local lab's supervisor, or by the pod's fault
 * sidecar on Kubernetes — and restarted as a crashed process is. Instantaneous: no lease to renew.
 */
export const kill = defineFaultKind({
  kind: 'kill',
  summary: "kill the instance's process (SIGKILL); the supervisor or the kubelet restarts it",
  fields: {},
  schemaText: {
    kind: 'Kills instances of the service.',
    fault: 'kill: the instances are killed; the supervisor (or Kubernetes) restarts them.',
  },
  fromFile: () => ({}),
  flags: [],
  fromFlags: () => ({}),
  describe: () => '',
  injectors: ['supervisor', 'fault-sidecar'],
  onGateways: false,
});
