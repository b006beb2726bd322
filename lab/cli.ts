/**
 * `chaos-lab`: the local lab's command line. Exit codes: 0 ok, 1 a runtime failure (no lab,
 * an instance unreachable, an agent refused), 2 bad usage or input; `run` adds 1 for a claim
 * that did not hold and 130 for an aborted run. Expected failures are one line and a hint,
 * never a stack trace.
 */

import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BACKENDS } from '../services/topology.ts';
import { CliError, usageError } from './cli-error.ts';
import { downCommand } from './commands/down.ts';
import {
  DEFAULT_LEASE_MS,
  faultAddCommand,
  faultClearCommand,
  faultListCommand,
  faultRecoveryCommand,
  type RecoveryChoice,
} from './commands/fault.ts';
import { listCommand } from './commands/list.ts';
import { runCommand, TARGET_NAMES, type TargetName } from './commands/run.ts';
import { statusCommand } from './commands/status.ts';
import { upDetachedCommand, upForegroundCommand } from './commands/up.ts';
import { durationArgument, formatDuration } from './duration.ts';
import { FAULT_KIND_NAMES, FAULT_KINDS, type FaultKind, PARAM_FLAGS, type ParamName } from './fault-kinds.ts';
import { type Io, processIo, warn } from './io.ts';
import { UP_DEFAULTS, type UpOptions } from './local/lab.ts';
import { DEFAULT_PORT_BASE, DEFAULT_RUN_LIVE_PORT, PORT_BASE_RANGE } from './local/layout.ts';
import { labHome } from './local/state.ts';
import { DRIVERS, type Driver } from './runner/experiment-schema.ts';

const SERVICES = [...BACKENDS, 'gateway'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** The agents' lease bounds. */
const LEASE_RANGE = { min: 100, max: 3_600_000 };

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

const instanceOption = () =>
  new Option('--instance <id>', 'only this instance, e.g. coin-1 or gateway-naive');

/** The commander program; each action records its exit code in `outcome`. */
export function createProgram(io: Io, outcome: { exitCode: number } = { exitCode: 0 }): Command {
  const home = () => labHome(io.env);
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
        .choices(['zero', 'half'])
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
    .action(
      async (opts: {
        detach?: boolean;
        portBase?: number;
        trust: 'zero' | 'half';
        recovery: string;
        readyTimeout?: number;
        logLevel: string;
        live: boolean;
        target: TargetName;
        context?: string;
        build: boolean;
        timeout?: number;
        forceConflicts?: boolean;
        grafana: boolean;
      }) => {
        if (opts.target === 'kind') {
          outcome.exitCode = await upKind(io, opts);
          return;
        }
        if (
          opts.context !== undefined ||
          opts.timeout !== undefined ||
          !opts.build ||
          opts.forceConflicts ||
          !opts.grafana
        ) {
          throw usageError(
            '--context, --no-build, --no-grafana, --timeout and --force-conflicts apply to --target kind only',
            'npx chaos-lab up --target kind --help',
          );
        }
        const options: UpOptions = {
          home: home(),
          portBase: opts.portBase ?? UP_DEFAULTS.portBase,
          trust: opts.trust,
          workerRecovery: opts.recovery === 'on',
          readyTimeoutMs: opts.readyTimeout ?? UP_DEFAULTS.readyTimeoutMs,
          logLevel: opts.logLevel,
          live: opts.live,
        };
        outcome.exitCode = opts.detach
          ? await upDetachedCommand(io, options)
          : await upForegroundCommand(io, options);
      },
    );

  program
    .command('status')
    .description('the gateways and every instance: URL, pid, ready, restarts')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      outcome.exitCode = await statusCommand(io, home(), opts);
    });

  program
    .command('down')
    .description(
      'stop the running lab and wait until every process is gone (--target kind: remove it from the cluster)',
    )
    .addOption(new Option('--target <target>', 'where the lab runs').choices(TARGET_NAMES).default('local'))
    .option('--context <name>', 'kind: another cluster of the kubeconfig')
    .option('--delete-cluster', 'kind: also delete the kind cluster (kind delete cluster --name chaos-lab)')
    .action(async (opts: { target: TargetName; context?: string; deleteCluster?: boolean }) => {
      if (opts.target === 'kind') {
        outcome.exitCode = await downKind(io, opts);
        return;
      }
      if (opts.context !== undefined || opts.deleteCluster) {
        throw usageError(
          '--context and --delete-cluster apply to --target kind only',
          'npx chaos-lab down --target kind',
        );
      }
      outcome.exitCode = await downCommand(io, home());
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
    .action(async (opts: { context?: string; json?: boolean }) => {
      const kind = await import('./kube/kind-lab.ts');
      const deps = await kind.defaultKindDeps(io.env);
      outcome.exitCode = await kind.withInterrupt(io, (signal) =>
        kind.kindDoctor(io, { ...opts, signal }, deps),
      );
    });

  const fault = program
    .command('fault')
    .description(
      'apply, list and clear faults through the fault agents and fault proxies (each fault is a lease)',
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
          `  ${k.padEnd(kindWidth)}  ${FAULT_KINDS[k].summary} (takes ${FAULT_KINDS[k].takes.map((t) => `--${t}`).join(', ')})`,
      ),
      '',
      'Examples:',
      '  chaos-lab fault add http-delay coin --delay 300ms --for 20s',
      '  chaos-lab fault add http-error like --status 503 --percent 50',
      '  chaos-lab fault add worker-panic archive --instance archive-1',
    ].join('\n'),
  );
  add
    .option(
      '--for <duration>',
      `how long the lease lasts (default ${formatDuration(DEFAULT_LEASE_MS)})`,
      durationArgument('--for', LEASE_RANGE),
    )
    .addOption(instanceOption())
    .option('--id <id>', 'the fault id (default: generated); reuse one to renew or change a fault')
    .action(
      async (
        kind: FaultKind,
        service: string,
        opts: Partial<Record<ParamName, number>> & { for?: number; instance?: string; id?: string },
      ) => {
        const { for: lease, instance, id, ...params } = opts;
        outcome.exitCode = await faultAddCommand(io, home(), kind, service, {
          ...params,
          leaseMs: lease ?? DEFAULT_LEASE_MS,
          ...(instance !== undefined ? { instance } : {}),
          ...(id !== undefined ? { id } : {}),
        });
      },
    );

  fault
    .command('list')
    .description('the active faults (and worker-recovery overrides) of every instance')
    .addArgument(serviceArgument(false))
    .addOption(instanceOption())
    .option('--json', 'machine-readable output')
    .action(async (service: string | undefined, opts: { json?: boolean; instance?: string }) => {
      outcome.exitCode = await faultListCommand(io, home(), service, opts);
    });

  fault
    .command('clear')
    .description('remove faults (and worker-recovery overrides) now, instead of waiting for their leases')
    .addArgument(serviceArgument(false))
    .addOption(instanceOption())
    .option('--id <id>', 'only this fault')
    .action(async (service: string | undefined, opts: { instance?: string; id?: string }) => {
      outcome.exitCode = await faultClearCommand(io, home(), service, opts);
    });

  fault
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
    .addOption(instanceOption())
    .action(async (setting: RecoveryChoice, service: string, opts: { for?: number; instance?: string }) => {
      outcome.exitCode = await faultRecoveryCommand(io, home(), setting, service, {
        leaseMs: opts.for ?? DEFAULT_LEASE_MS,
        ...(opts.instance !== undefined ? { instance: opts.instance } : {}),
      });
    });

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

/** `up --target kind`: loaded on demand, so that the local lab never loads cdk8s or the Kubernetes client. */
async function upKind(
  io: Io,
  opts: {
    detach?: boolean;
    portBase?: number;
    context?: string;
    build: boolean;
    timeout?: number;
    forceConflicts?: boolean;
    grafana: boolean;
  },
): Promise<number> {
  if (opts.detach || opts.portBase !== undefined) {
    throw usageError(
      '--detach and --port-base apply to the local lab only',
      'npx chaos-lab up --target kind',
    );
  }
  const kind = await import('./kube/kind-lab.ts');
  const deps = await kind.defaultKindDeps(io.env);
  return kind.withInterrupt(io, (signal) =>
    kind.kindUp(
      io,
      {
        home: labHome(io.env),
        build: opts.build,
        signal,
        ...(opts.context !== undefined ? { context: opts.context } : {}),
        ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
        ...(opts.forceConflicts ? { forceConflicts: true } : {}),
        ...(opts.grafana ? {} : { grafana: false }),
      },
      deps,
    ),
  );
}

async function downKind(io: Io, opts: { context?: string; deleteCluster?: boolean }): Promise<number> {
  const kind = await import('./kube/kind-lab.ts');
  const deps = await kind.defaultKindDeps(io.env);
  return kind.withInterrupt(io, (signal) =>
    kind.kindDown(
      io,
      {
        signal,
        ...(opts.context !== undefined ? { context: opts.context } : {}),
        ...(opts.deleteCluster ? { deleteCluster: true } : {}),
      },
      deps,
    ),
  );
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
