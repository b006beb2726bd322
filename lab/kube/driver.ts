/**
 * A Kubernetes cluster behind the LabDriver interface: a kind cluster, or with `--context` any
 * cluster of the kubeconfig. `up` is kind-up.ts's, `down` and `doctor` kind-lab.ts's, interruptible with
 * Ctrl-C; the runner's target is kube-target.ts's.
 */

import { usageError } from '../cli-error.ts';
import type { LabDriver } from '../lab-driver.ts';
import { labHome } from '../local/state.ts';
import { defaultKindDeps, kindDoctor, kindDown, kindStatus, withInterrupt } from './kind-lab.ts';
import { kindUp } from './kind-up.ts';

export const kindDriver: LabDriver = {
  async up(io, flags) {
    if (flags.detach || flags.portBase !== undefined) {
      throw usageError(
        '--detach and --port-base apply to the local lab only',
        'npx chaos-lab up --target kind',
      );
    }
    const deps = await defaultKindDeps(io.env);
    return withInterrupt(io, (signal) =>
      kindUp(
        io,
        {
          home: labHome(io.env),
          build: flags.build,
          trustMode: flags.trust,
          signal,
          ...(flags.context !== undefined ? { context: flags.context } : {}),
          ...(flags.timeout !== undefined ? { timeoutMs: flags.timeout } : {}),
          ...(flags.forceConflicts ? { forceConflicts: true } : {}),
          ...(flags.grafana ? {} : { grafana: false }),
        },
        deps,
      ),
    );
  },

  async down(io, flags) {
    const deps = await defaultKindDeps(io.env);
    return withInterrupt(io, (signal) =>
      kindDown(
        io,
        {
          signal,
          ...(flags.context !== undefined ? { context: flags.context } : {}),
          ...(flags.deleteCluster ? { deleteCluster: true } : {}),
        },
        deps,
      ),
    );
  },

  async status(io, flags) {
    const deps = await defaultKindDeps(io.env);
    // `--context`, when the command line gives status one.
    const context = 'context' in flags && typeof flags.context === 'string' ? flags.context : undefined;
    return withInterrupt(io, (signal) =>
      kindStatus(
        io,
        { signal, ...(flags.json ? { json: true } : {}), ...(context !== undefined ? { context } : {}) },
        deps,
      ),
    );
  },

  async doctor(io, flags) {
    const deps = await defaultKindDeps(io.env);
    return withInterrupt(io, (signal) => kindDoctor(io, { ...flags, signal }, deps));
  },

  async target(options) {
    const { createKubeTarget } = await import('./kube-target.ts');
    return createKubeTarget({
      home: options.home,
      ...(options.context !== undefined ? { context: options.context } : {}),
      ...(options.kindConfig !== undefined ? { kindConfig: options.kindConfig } : {}),
      ...(options.gatewayHost !== undefined ? { gatewayHost: options.gatewayHost } : {}),
    });
  },
};
