/**
 * The local lab behind the LabDriver interface: `up`, `down` and `status` on the processes of
 * this machine, and the runner's local target.
 */

import { usageError } from '../cli-error.ts';
import type { LabDriver, UpFlags } from '../lab-driver.ts';
import { downCommand } from './down.ts';
import { UP_DEFAULTS, type UpOptions } from './lab.ts';
import { labHome } from './state.ts';
import { statusCommand } from './status.ts';
import { upDetachedCommand, upForegroundCommand } from './up.ts';

function upOptions(home: string, flags: UpFlags): UpOptions {
  if (
    flags.context !== undefined ||
    flags.timeout !== undefined ||
    !flags.build ||
    flags.forceConflicts ||
    !flags.grafana
  ) {
    throw usageError(
      '--context, --no-build, --no-grafana, --timeout and --force-conflicts apply to --target kind only',
      'npx chaos-lab up --target kind --help',
    );
  }
  return {
    home,
    portBase: flags.portBase ?? UP_DEFAULTS.portBase,
    trust: flags.trust,
    workerRecovery: flags.recovery === 'on',
    readyTimeoutMs: flags.readyTimeout ?? UP_DEFAULTS.readyTimeoutMs,
    logLevel: flags.logLevel,
    live: flags.live,
  };
}

export const localDriver: LabDriver = {
  async up(io, flags) {
    const options = upOptions(labHome(io.env), flags);
    return flags.detach ? upDetachedCommand(io, options) : upForegroundCommand(io, options);
  },

  async down(io, flags) {
    if (flags.context !== undefined || flags.deleteCluster) {
      throw usageError(
        '--context and --delete-cluster apply to --target kind only',
        'npx chaos-lab down --target kind',
      );
    }
    return downCommand(io, labHome(io.env));
  },

  async status(io, flags) {
    return statusCommand(io, labHome(io.env), flags);
  },

  async target(options) {
    const { createLocalTarget } = await import('../runner/local-target.ts');
    return createLocalTarget({ home: options.home });
  },
};
