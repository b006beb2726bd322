/**
 * The flags of `chaos-lab fault add` that parametrize a fault. Each kind (kinds/*.ts) names the ones
 * it takes; the bounds are the injectors' own (services/fault-bounds.ts).
 */
import { InvalidArgumentError } from 'commander';
import { FAULT_BOUNDS } from '../../services/fault-bounds.ts';
import { durationArgument } from '../duration.ts';
import { LATENCY_DIRECTIONS } from './kinds/latency.ts';

export type ParamName = 'delay' | 'jitter' | 'status' | 'percent' | 'direction';
export type ParamValues = Partial<Record<ParamName, number>>;

export interface ParamFlag {
  /** As commander spells it: `--delay <duration>`. */
  readonly flags: string;
  readonly description: string;
  readonly parse: (raw: string) => number;
}

function numberFlag(
  name: string,
  range: { readonly min: number; readonly max: number },
  shape: { integer: boolean; example: number },
): (raw: string) => number {
  const { min, max } = range;
  const { integer, example } = shape;
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

/** A flag that takes one of a few words, each standing for a number (`--direction both` → 0.5). */
function wordFlag(name: string, words: Readonly<Record<string, number>>): (raw: string) => number {
  const names = Object.keys(words);
  return (raw) => {
    if (!Object.hasOwn(words, raw)) {
      throw new InvalidArgumentError(
        `--${name} expects ${names.slice(0, -1).join(', ')} or ${names.at(-1)}, got ${JSON.stringify(raw)}.`,
      );
    }
    return words[raw] as number;
  };
}

export const PARAM_FLAGS: Readonly<Record<ParamName, ParamFlag>> = {
  delay: {
    flags: '--delay <duration>',
    description: 'http-delay, latency: added to every request or response, e.g. 300ms',
    parse: durationArgument('--delay', FAULT_BOUNDS.delayMs),
  },
  jitter: {
    flags: '--jitter <duration>',
    description: 'http-delay, latency: random variation of the delay, ± up to this, e.g. 20ms (default 0ms)',
    parse: durationArgument('--jitter', FAULT_BOUNDS.jitterMs),
  },
  status: {
    flags: '--status <code>',
    description: 'http-error: status to answer with, 400-599 (default 503)',
    parse: numberFlag('status', FAULT_BOUNDS.status, { integer: true, example: 503 }),
  },
  percent: {
    flags: '--percent <n>',
    description:
      'http-error, worker-panic, loss, reset: share of requests, tasks, segments or connections hit, 0-100 (default 100; loss needs it)',
    parse: numberFlag('percent', FAULT_BOUNDS.percent, { integer: false, example: 50 }),
  },
  direction: {
    flags: '--direction <requests|responses|both>',
    description:
      'latency: which way the delay is paid, to the backend, back from it or both, half each; --delay is what a call pays in all (default both; responses with --injector netem)',
    parse: wordFlag('direction', LATENCY_DIRECTIONS),
  },
};
