/**
 * A kill: the instance's process is SIGKILLed — by the local supervisor, or by the pod's fault
 * sidecar on Kubernetes. Instantaneous: nothing to renew, remove, list or clear.
 */
import type { FaultInjector } from '../injector.ts';
import type { InjectorName } from '../kind.ts';

export function createKillInjector(
  name: InjectorName,
  /** Kills one instance; resolves once it is killed (or was down already). */
  kill: (instance: string) => Promise<void>,
): FaultInjector {
  return {
    name,
    apply: (applied) =>
      Promise.allSettled(
        applied.map(async (a) => {
          await kill(a.instance);
          return { created: true };
        }),
      ),
    renew: async () => [],
    remove: async () => {},
    list: async () => ({ leases: [], settings: [], failed: [] }),
    clear: async () => 0,
  };
}
