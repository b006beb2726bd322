/**
 * `chaos-lab`: the lab's command line; `--target` picks the lab's driver (lab/lab-driver.ts), the
 * local lab unless told otherwise. Exit codes: 0 ok, 1 a runtime failure (no lab,
 * an instance unreachable, an agent refused), 2 bad usage or input; `run` adds 1 for a claim
 * that did not hold and 130 for an aborted run. Expected failures are one line and a hint,
 * never a stack trace.
 */

import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { FAULT_BOUNDS } from '../services/fault-bounds.ts';
import { TRUST_MODES } from '../services/lib/trust.ts';
import { BACKENDS } from '../services/topology.ts';
import { CliError, usageError } from './cli-error.ts';
import {
  DEFAULT_LEASE_MS,
  faultAddCommand,
  faultClearCommand,
  faultListCommand,
  faultRecoveryCommand,
  type RecoveryChoice,
} from './commands/fault.ts';
import { listCommand } from './commands/list.ts';
import { runCommand } from './commands/run.ts';
import { durationArgument, formatDuration } from './duration.ts';
import { PARAM_FLAGS, type ParamName } from './faults/flags.ts';
import { CHOSEN_INJECTORS, type ChosenInjector, type FaultService } from './faults/kind.ts';
import { FAULT_KIND_NAMES, type FaultKind, faultKind } from './faults/registry.ts';
import { type Io, processIo, warn } from './io.ts';
import {
  type DownFlags,
  labDriver,
  type StatusFlags,
  TARGET_NAMES,
  type TargetName,
  targetOptions,
  type UpFlags,
} from './lab-driver.ts';
import { DEFAULT_PORT_BASE, DEFAULT_RUN_LIVE_PORT, PORT_BASE_RANGE } from './local/layout.ts';
import { DRIVERS, type Driver } from './runner/experiment-schema.ts';
import type { Target } from './runner/target.ts';

const SERVICES = [...BACKENDS, 'gateway'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** The injectors' lease bounds. */
const LEASE_RANGE = FAULT_BOUNDS.leaseMs;

function portBaseOption(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < PORT_BASE_RANGE.min || value > PORT_BASE_RANGE.max) {
    throw new InvalidArgumentError(
      `expected an integer from ${PORT_BASE_RANGE.min} to ${PORT_BASE_RANGE.max}, e.g. --port-base 19000.`,
    );
  }
  return value;
}

function livePortOption(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1_024 || value > 65_535) {
    throw new InvalidArgumentError(
      `expected a port from 1024 to 65535, e.g. --live-port ${DEFAULT_RUN_LIVE_PORT}.`,
    );
  }
  return value;
}

const serviceArgument = (required: boolean) =>
  new Argument(required ? '<service>' : '[service]', `a backend (${BACKENDS.join(', ')}) or gateway`).choices(
    SERVICES,
  );

/** Given once: a second --instance would silently win over the first. */
const instanceOption = () =>
  new Option('--instance <id>', 'only this instance, e.g. coin-1 or gateway-naive').argParser(
    (value: string, previous: string | undefined) => {
      if (previous !== undefined) {
        throw new InvalidArgumentError(
          `given twice (${previous}, then ${value}); a command acts on one instance or on all of a service.`,
        );
      }
      return value;
    },
  );

/** Where `chaos-lab fault` acts: the lab of --target, on --context's cluster for kind. */
interface WhereFlags {
  readonly target: TargetName;
  readonly context?: string;
}

function whereOptions(command: Command): Command {
  return command
    .addOption(new Option('--target <target>', 'where the lab runs').choices(TARGET_NAMES).default('local'))
    .option('--context <name>', 'kind: the kubeconfig context of the cluster (default kind-chaos-lab)');
}

/** The commander program; each action records its exit code in `outcome`. */
export function createProgram(io: Io, outcome: { exitCode: number } = { exitCode: 0 }): Command {
  /** The target of a `fault` command; released once the command is done. */
  const withTarget = async (where: WhereFlags, act: (target: Target) => Promise<number>) => {
    if (where.context !== undefined && where.target !== 'kind') {
      throw usageError(
        '--context applies to --target kind only',
        `add --target kind --context ${where.context}`,
      );
    }
    const target = await (await labDriver(where.target)).target(targetOptions(io, where.context));
    try {
      return await act(target);
    } finally {
      await target.release();
    }
  };
  const program = new Command('chaos-lab')
    .description('The local chaos lab: five backends, three gateways, faults on demand.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
    })
    .showHelpAfterError('(add --help for usage)');

  program
    .command('up')
    .description(
      'start every instance on 127.0.0.1 and wait until all are ready (Ctrl-C stops them); --target kind deploys the lab to a kind cluster',
    )
    .addOption(new Option('--target <target>', 'where the lab runs').choices(TARGET_NAMES).default('local'))
    .option('--context <name>', 'kind: another cluster of the kubeconfig (the image from CHAOS_LAB_IMAGE)')
    .option('--no-build', 'kind: skip `docker build` (load the chaos-lab:dev image already built)')
    .option(
      '--timeout <duration>',
      'kind: how long to wait for every Deployment to be ready (default 5m)',
      durationArgument('--timeout', { min: 1_000, max: 3_600_000 }),
    )
    .option('--force-conflicts', 'kind: take over fields another field manager owns')
    .option(
      '--no-grafana',
      'kind: deploy Prometheus without Grafana (for a cluster that cannot get its image)',
    )
    .option('--detach', 'run the lab in the background; stop it with `chaos-lab down`')
    .option(
      '--port-base <n>',
      `first port of the lab's range: gateways at +80..+82, control API at +90, live page at +91, backends from +100 (default ${DEFAULT_PORT_BASE})`,
      portBaseOption,
    )
    .addOption(
      new Option('--trust <mode>', 'trust between gateways and backends')
        .choices([...TRUST_MODES])
        .default('half'),
    )
    .addOption(
      new Option('--recovery <on|off>', 'panic recovery in background workers, for every backend')
        .choices(['on', 'off'])
        .default('on'),
    )
    .option(
      '--ready-timeout <duration>',
      'how long to wait for every instance to be ready (default 60s)',
      durationArgument('--ready-timeout', { min: 1_000, max: 600_000 }),
    )
    .addOption(
      new Option('--log-level <level>', "the instances' log level").choices(LOG_LEVELS).default('info'),
    )
    .option('--no-live', 'do not serve the live page (at port base + 91)')
    .action(async (opts: UpFlags & { target: TargetName }) => {
      outcome.exitCode = await (await labDriver(opts.target)).up(io, opts);
    });

  program
    .command('status')
    .description('the gateways and every instance: URL, pid, ready, restarts; the trust mode')
    .addOption(new Option('--target <target>', 'where the lab runs').choices(TARGET_NAMES).default('local'))
    .option('--context <name>', 'kind: another cluster of the kubeconfig')
    .option('--json', 'machine-readable output')
    .action(async (opts: StatusFlags & { target: TargetName }) => {
      outcome.exitCode = await (await labDriver(opts.target)).status(io, opts);
    });

  program
    .command('down')
    .description(
      'stop the running lab and wait until every process is gone (--target kind: remove it from the cluster)',
    )
    .addOption(new Option('--target <target>', 'where the lab runs').choices(TARGET_NAMES).default('local'))
    .option('--context <name>', 'kind: another cluster of the kubeconfig')
    .option('--delete-cluster', 'kind: also delete the kind cluster (kind delete cluster --name chaos-lab)')
    .action(async (opts: DownFlags & { target: TargetName }) => {
      outcome.exitCode = await (await labDriver(opts.target)).down(io, opts);
    });

  program
    .command('doctor')
    .description(
      'check what the kind lab needs: docker, kind >= 0.24, the cluster, the context, tc netem in a pod, NetworkPolicy',
    )
    .addOption(new Option('--target <target>', 'the target to check').choices(['kind']).default('kind'))
    .option(
      '--context <name>',
      'another cluster of the kubeconfig (no docker/kind checks; the image from CHAOS_LAB_IMAGE)',
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: { target: TargetName; context?: string; json?: boolean }) => {
      const driver = await labDriver(opts.target);
      if (!driver.doctor) throw usageError(`--target ${opts.target} has nothing for doctor to check`);
      outcome.exitCode = await driver.doctor(io, opts);
    });

  const fault = program
    .command('fault')
    .description(
      'apply, list and clear faults by hand, on the lab of --target, as a run applies them (each fault is a lease)',
    );

  const add = fault
    .command('add')
    .description('apply a fault to every instance of a service (or one, with --instance) for a while')
    .addArgument(new Argument('<kind>', 'what to inject (see below)').choices(FAULT_KIND_NAMES))
    .addArgument(serviceArgument(true));
  for (const flag of Object.values(PARAM_FLAGS)) add.option(flag.flags, flag.description, flag.parse);
  const kindWidth = Math.max(...FAULT_KIND_NAMES.map((k) => k.length));
  add.addHelpText(
    'after',
    [
      '',
      'Kinds:',
      ...FAULT_KIND_NAMES.map(
        (k) =>
          `  ${k.padEnd(kindWidth)}  ${faultKind(k).summary}${
            faultKind(k).flags.length > 0
              ? ` (takes ${faultKind(k)
                  .flags.map((t) => `--${t}`)
                  .join(', ')})`
              : ''
          }`,
      ),
      '',
      'Examples:',
      '  chaos-lab fault add http-delay coin --delay 300ms --for 20s',
      '  chaos-lab fault add http-error like --status 503 --percent 50',
      '  chaos-lab fault add worker-panic archive --instance archive-1',
      '  chaos-lab fault add latency coin --delay 300ms --target kind   # by the fault proxy sidecars of coin',
      '  chaos-lab fault add latency coin --delay 300ms --direction responses --injector netem --target kind',
    ].join('\n'),
  );
  whereOptions(add)
    .option(
      '--for <duration>',
      `how long the lease lasts (default ${formatDuration(DEFAULT_LEASE_MS)})`,
      durationArgument('--for', LEASE_RANGE),
    )
    .addOption(instanceOption())
    .option('--id <id>', 'the fault id (default: generated); reuse one to renew or change a fault')
    .addOption(
      new Option(
        '--injector <name>',
        'latency, loss: which injector applies it (default: the fault proxy; netem only with --target kind, where the node kernel has sch_netem)',
      ).choices(Object.keys(CHOSEN_INJECTORS)),
    )
    .action(
      async (
        kind: FaultKind,
        service: string,
        opts: Partial<Record<ParamName, number>> &
          WhereFlags & { for?: number; instance?: string; id?: string; injector?: ChosenInjector },
      ) => {
        const { for: lease, instance, id, injector, target, context, ...params } = opts;
        outcome.exitCode = await withTarget({ target, ...(context !== undefined ? { context } : {}) }, (t) =>
          faultAddCommand(io, t, kind, service as FaultService, {
            ...params,
            leaseMs: lease ?? DEFAULT_LEASE_MS,
            ...(instance !== undefined ? { instance } : {}),
            ...(id !== undefined ? { id } : {}),
            ...(injector !== undefined ? { injector } : {}),
          }),
        );
      },
    );

  whereOptions(
    fault
      .command('list')
      .description('the active faults (and worker-recovery overrides) of every instance')
      .addArgument(serviceArgument(false))
      .addOption(instanceOption())
      .option('--json', 'machine-readable output'),
  ).action(async (service: string | undefined, opts: WhereFlags & { json?: boolean; instance?: string }) => {
    outcome.exitCode = await withTarget(opts, (t) => faultListCommand(io, t, service, opts));
  });

  whereOptions(
    fault
      .command('clear')
      .description('remove faults (and worker-recovery overrides) now, instead of waiting for their leases')
      .addArgument(serviceArgument(false))
      .addOption(instanceOption())
      .option('--id <id>', 'only this fault'),
  ).action(async (service: string | undefined, opts: WhereFlags & { instance?: string; id?: string }) => {
    outcome.exitCode = await withTarget(opts, (t) => faultClearCommand(io, t, service, opts));
  });

  const recovery = fault
    .command('recovery')
    .description(
      'override panic recovery in background workers for a while (`default` drops the override now)',
    )
    .addArgument(
      new Argument('<setting>', 'on, off, or default (drop the override now)').choices([
        'on',
        'off',
        'default',
      ]),
    )
    .addArgument(serviceArgument(true))
    .option(
      '--for <duration>',
      `how long the override lasts (default ${formatDuration(DEFAULT_LEASE_MS)})`,
      durationArgument('--for', LEASE_RANGE),
    )
    .addOption(instanceOption());
  whereOptions(recovery).action(
    async (
      setting: RecoveryChoice,
      service: string,
      opts: WhereFlags & { for?: number; instance?: string },
    ) => {
      outcome.exitCode = await withTarget(opts, (t) =>
        faultRecoveryCommand(io, t, setting, service, {
          leaseMs: opts.for ?? DEFAULT_LEASE_MS,
          ...(opts.instance !== undefined ? { instance: opts.instance } : {}),
        }),
      );
    },
  );

  program
    .command('run')
    .description(
      'run an experiment: faults phase by phase under load, claims checked, results and report written',
    )
    .argument('<experiment>', 'a name from the catalog (npx chaos-lab list) or a path to an experiment file')
    .option('--out <dir>', 'where the run folder is created (default results/)')
    .option(
      '--live-port <n>',
      `where the live page is served, on 127.0.0.1 (default ${DEFAULT_RUN_LIVE_PORT}; a free one if taken)`,
      livePortOption,
    )
    .option('--no-live', 'do not serve the live page')
    .addOption(
      new Option('--target <target>', 'where the experiment runs').choices(TARGET_NAMES).default('local'),
    )
    .option('--context <name>', 'kind: the kubeconfig context of the cluster (default kind-chaos-lab)')
    .addOption(
      new Option(
        '--driver <driver>',
        "what drives the load, overriding the experiment's load.driver (default builtin; k6 needs k6 v2)",
      ).choices(DRIVERS),
    )
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 every claim held, 1 a claim did not hold / no verdict / the run failed,',
        '            2 invalid experiment (nothing started), 130 aborted (rolled back, partial result).',
        '',
        'Examples:',
        '  npx chaos-lab run weak-dependency-latency',
        '  npx chaos-lab run ./my-experiment.yaml --out /tmp/results',
        '  npx chaos-lab run weak-dependency-latency --driver k6',
        '  npx chaos-lab run weak-dependency-latency --target kind   # the lab deployed by up --target kind',
        '',
        'Environment (--target kind): CHAOS_LAB_KIND_CONFIG=<file> the kind configuration the cluster was',
        '  created with, when not kind/cluster.yaml: its extraPortMappings say where the gateways answer.',
      ].join('\n'),
    )
    .action(
      async (
        experiment: string,
        opts: {
          out?: string;
          target: TargetName;
          context?: string;
          live: boolean;
          livePort?: number;
          driver?: Driver;
        },
      ) => {
        if (opts.context !== undefined && opts.target !== 'kind') {
          throw usageError(
            '--context applies to --target kind only',
            `npx chaos-lab run ${experiment} --target kind --context ${opts.context}`,
          );
        }
        outcome.exitCode = await runCommand(io, experiment, {
          target: opts.target,
          ...(opts.context !== undefined ? { context: opts.context } : {}),
          ...(opts.driver !== undefined ? { driver: opts.driver } : {}),
          ...(opts.out !== undefined ? { out: opts.out } : {}),
          ...(opts.live ? { live: { port: opts.livePort ?? DEFAULT_RUN_LIVE_PORT } } : {}),
        });
      },
    );

  program
    .command('list')
    .description("the catalog's experiments (experiments/*.yaml): name, length and description")
    .action(async () => {
      outcome.exitCode = await listCommand(io);
    });

  return program;
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const outcome = { exitCode: 0 };
  const program = createProgram(io, outcome);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return outcome.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is bad usage.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      warn(io, `chaos-lab: ${err.message}`);
      for (const line of err.details) warn(io, line);
      if (err.hint) warn(io, `hint: ${err.hint}`);
      return err.exitCode;
    }
    warn(io, `chaos-lab: unexpected failure: ${(err as Error).stack ?? String(err)}`);
    return 1;
  }
}
