/**
 * The faults the CLI can apply, and the flags that parametrize them. Each kind names the
 * flags it takes, turns them into the injector's `params`, and says which injector applies
 * it: the fault agent inside each instance (application faults), or the fault proxy in
 * front of each backend instance (network faults). A flag given to a kind that does not take
 * it is an error rather than silently ignored. A new kind is one entry here, plus its flags
 * if they are new.
 */

import { InvalidArgumentError } from 'commander';
import { usageError } from './cli-error.ts';
import { durationArgument } from './duration.ts';

export type ParamName = 'delay' | 'jitter' | 'status' | 'percent';
export type ParamValues = Partial<Record<ParamName, number>>;

export interface ParamFlag {
  /** As commander spells it: `--delay <duration>`. */
  readonly flags: string;
  readonly description: string;
  readonly parse: (raw: string) => number;
}

function numberFlag(
  name: string,
  range: { min: number; max: number; integer: boolean; example: number },
): (raw: string) => number {
  const { min, max, integer, example } = range;
  return (raw) => {
    const value = Number(raw);
    if (
      raw.trim() === '' ||
      !Number.isFinite(value) ||
      value < min ||
      value > max ||
      (integer && !Number.isInteger(value))
    ) {
      throw new InvalidArgumentError(
        `--${name} expects ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, e.g. --${name} ${example}.`,
      );
    }
    return value;
  };
}

/** Upper bound the agents accept for a delay or a jitter. */
const MAX_DELAY_MS = 60_000;

export const PARAM_FLAGS: Readonly<Record<ParamName, ParamFlag>> = {
  delay: {
    flags: '--delay <duration>',
    description: 'http-delay, latency: added to every request or response, e.g. 300ms',
    parse: durationArgument('--delay', { min: 0, max: MAX_DELAY_MS }),
  },
  jitter: {
    flags: '--jitter <duration>',
    description: 'http-delay, latency: random variation of the delay, ± up to this, e.g. 20ms (default 0ms)',
    parse: durationArgument('--jitter', { min: 0, max: MAX_DELAY_MS }),
  },
  status: {
    flags: '--status <code>',
    description: 'http-error: status to answer with, 400-599 (default 503)',
    parse: numberFlag('status', { min: 400, max: 599, integer: true, example: 503 }),
  },
  percent: {
    flags: '--percent <n>',
    description:
      'http-error, worker-panic, loss, reset: share of requests, tasks, segments or connections hit, 0-100 (default 100; loss needs it)',
    parse: numberFlag('percent', { min: 0, max: 100, integer: false, example: 50 }),
  },
};

/** Who applies a kind: the agent in the instance, or the proxy in front of it. */
export type CliInjector = 'fault-agent' | 'fault-proxy';

export interface FaultKindSpec {
  readonly summary: string;
  readonly injector: CliInjector;
  readonly takes: readonly ParamName[];
  /** The injector's `params` from the flags given; throws a usage error for a missing one. */
  readonly params: (given: ParamValues) => Record<string, number>;
}

export const FAULT_KINDS = {
  'http-delay': {
    summary: 'delay every request inside the instance (not /healthz, /readyz, /metrics)',
    injector: 'fault-agent',
    takes: ['delay', 'jitter'],
    params: (given) => {
      if (given.delay === undefined) throw usageError('http-delay needs --delay', 'e.g. --delay 300ms');
      return { delayMs: given.delay, jitterMs: given.jitter ?? 0 };
    },
  },
  'http-error': {
    summary: 'answer a share of requests with an error status',
    injector: 'fault-agent',
    takes: ['status', 'percent'],
    params: (given) => ({ status: given.status ?? 503, percent: given.percent ?? 100 }),
  },
  'worker-panic': {
    summary: 'make a share of background tasks throw (a goroutine panic)',
    injector: 'fault-agent',
    takes: ['percent'],
    params: (given) => ({ percent: given.percent ?? 100 }),
  },
  latency: {
    summary: 'network latency in front of a backend instance: every response waits (fault proxy)',
    injector: 'fault-proxy',
    takes: ['delay', 'jitter'],
    params: (given) => {
      if (given.delay === undefined) throw usageError('latency needs --delay', 'e.g. --delay 300ms');
      return { delayMs: given.delay, jitterMs: given.jitter ?? 0 };
    },
  },
  loss: {
    summary: 'packet loss, emulated by what TCP makes of it: retransmission timeouts (fault proxy)',
    injector: 'fault-proxy',
    takes: ['percent'],
    params: (given) => {
      // No default: 100 % loss stalls every connection for the 30 s cap, which nobody means.
      if (given.percent === undefined) throw usageError('loss needs --percent', 'e.g. --percent 10');
      return { percent: given.percent };
    },
  },
  reset: {
    summary: 'reset a share of new connections to a backend instance (fault proxy)',
    injector: 'fault-proxy',
    takes: ['percent'],
    params: (given) => ({ percent: given.percent ?? 100 }),
  },
} as const satisfies Record<string, FaultKindSpec>;

export type FaultKind = keyof typeof FAULT_KINDS;
export const FAULT_KIND_NAMES = Object.keys(FAULT_KINDS) as FaultKind[];

/** The injector's params for `kind`, refusing flags that kind does not take. */
export function faultParams(kind: FaultKind, given: ParamValues): Record<string, number> {
  const spec: FaultKindSpec = FAULT_KINDS[kind];
  const foreign = (Object.keys(given) as ParamName[]).filter(
    (p) => given[p] !== undefined && !spec.takes.includes(p),
  );
  if (foreign.length > 0) {
    throw usageError(
      `${foreign.map((f) => `--${f}`).join(', ')} does not apply to ${kind}`,
      `${kind} takes ${spec.takes.map((t) => `--${t}`).join(', ')}`,
    );
  }
  return spec.params(given);
}
