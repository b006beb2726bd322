/**
 * The run's journal: one JSON line per event, appended as the run goes, starting before anything is
 * touched. If the runner dies half-way, the journal still says what was injected where and what was
 * measured up to that second. Writes are synchronous so lines never interleave or end half-written
 * (a crash can lose at most the line being written).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { BackendName, Strategy } from '../../services/topology.ts';
import type { Fault, VariantSettings } from './experiment.ts';
import type {
  ClaimResult,
  GatewayPhaseStats,
  GatewaySecond,
  LeftoverFault,
  ProxyRestart,
  ReappliedLease,
  RunStatus,
  ServiceCounters,
  Verdict,
  Warmup,
} from './result.ts';
import type { Injector } from './target.ts';

export const JOURNAL_FILE = 'journal.jsonl';

type Gateways<T> = Readonly<Partial<Record<Strategy, T>>>;

/** What happened, in the order it happened. The same events feed the terminal's progress display. */
export type RunEvent =
  | {
      readonly type: 'run-started';
      readonly runId: string;
      readonly experiment: { readonly name: string; readonly file: string };
      readonly target: string;
      readonly variants: readonly string[];
      readonly phases: readonly { readonly name: string; readonly durationMs: number }[];
      readonly gateways: readonly Strategy[];
      readonly rate: number;
    }
  | { readonly type: 'lab-ready'; readonly gateways: Readonly<Record<string, string>> }
  | {
      readonly type: 'variant-started';
      readonly variant: string;
      readonly settings: VariantSettings;
    }
  | {
      readonly type: 'settings-applied';
      readonly variant: string;
      readonly settings: VariantSettings;
      readonly leaseMs: number;
    }
  | { readonly type: 'settings-cleared'; readonly variant: string }
  | {
      /** The target had to wait for every backend instance to be ready before a variant or a phase. */
      readonly type: 'lab-settled';
      readonly variant: string;
      /** Absent before the variant itself. */
      readonly phase?: string;
      readonly waitedMs: number;
    }
  | {
      readonly type: 'load-started';
      readonly variant: string;
      /** The shortest warm-up: measuring starts no sooner, and then once the lab is steady. */
      readonly warmupMs: number;
      /** The longest: measuring starts then, steady or not (absent from journals of older runs). */
      readonly maxWarmupMs?: number;
    }
  | {
      /** A second of the warm-up in which the lab was not steady (lab/runner/steady.ts). */
      readonly type: 'warmup-waiting';
      readonly variant: string;
      /** The second's number since the load started. */
      readonly t: number;
      /** Since the load started, when the second was judged. */
      readonly elapsedMs: number;
      /** e.g. `naive 57% ok, p50 1.93s (usually 12ms), p99 2s`, one per gateway (and the generator) not steady. */
      readonly problems: readonly string[];
    }
  | ({ readonly type: 'warmup-finished'; readonly variant: string } & Warmup)
  | {
      readonly type: 'phase-started';
      readonly variant: string;
      readonly phase: string;
      readonly durationMs: number;
      /** Fault descriptions, e.g. `latency on coin (delay 400ms)`. */
      readonly faults: readonly string[];
    }
  | {
      readonly type: 'fault-injected';
      readonly variant: string;
      readonly phase: string;
      readonly fault: string;
      readonly kind: Fault['kind'];
      readonly service: BackendName;
      readonly applied: readonly {
        readonly instance: string;
        readonly injector: Injector;
        readonly id: string;
      }[];
      readonly leaseMs: number;
    }
  | {
      readonly type: 'fault-renewed';
      readonly variant: string;
      readonly ids: readonly string[];
      readonly leaseMs: number;
    }
  | {
      readonly type: 'fault-reapplied';
      readonly variant: string;
      readonly phase: string;
      /** Leases an instance or a fault proxy had lost (its process restarted), put back by the renewal. */
      readonly leases: readonly Omit<ReappliedLease, 'at'>[];
    }
  | {
      readonly type: 'fault-removed';
      readonly variant: string;
      readonly phase: string;
      readonly ids: readonly string[];
      /** `phase-end` normally; `rollback` after an error or an abort. */
      readonly reason: 'phase-end' | 'rollback';
    }
  | {
      readonly type: 'second';
      readonly variant: string;
      readonly t: number;
      readonly gateways: Gateways<GatewaySecond>;
    }
  | {
      readonly type: 'phase-finished';
      readonly variant: string;
      readonly phase: string;
      readonly partial: boolean;
      readonly services: Readonly<Partial<Record<BackendName, ServiceCounters>>>;
      /** The fault proxies that restarted in the phase (targets that count them). */
      readonly proxyRestarts?: readonly ProxyRestart[];
    }
  | {
      readonly type: 'variant-finished';
      readonly variant: string;
      readonly phases: readonly { readonly name: string; readonly gateways: Gateways<GatewayPhaseStats> }[];
    }
  | { readonly type: 'rollback'; readonly reason: 'error' | 'abort'; readonly error?: string }
  | { readonly type: 'warning'; readonly message: string }
  | ({ readonly type: 'claim' } & ClaimResult)
  | {
      readonly type: 'audit';
      readonly leftoverFaults: readonly LeftoverFault[] | null;
      readonly error?: string;
    }
  | {
      readonly type: 'run-finished';
      readonly status: RunStatus;
      readonly verdict: Verdict;
      readonly verdictReason?: string;
      readonly error?: string;
      readonly exitCode: number;
    };

export type RunEventType = RunEvent['type'];

export interface Journal {
  readonly file: string;
  append(event: RunEvent): void;
  close(): void;
}

/** Creates (or appends to) `<dir>/journal.jsonl`; `now` stamps each line (`at`, ISO). */
export function openJournal(dir: string, now: () => number): Journal {
  const file = path.join(dir, JOURNAL_FILE);
  let fd: number | undefined = openSync(file, 'a');
  return {
    file,
    append(event) {
      if (fd === undefined) throw new Error(`the journal ${file} is closed`);
      const buffer = Buffer.from(`${JSON.stringify({ at: new Date(now()).toISOString(), ...event })}\n`);
      let written = 0;
      // writeSync may write less than asked; a bounded loop finishes the line (each pass writes ≥ 1 byte).
      while (written < buffer.length) written += writeSync(fd, buffer, written, buffer.length - written);
    },
    close() {
      if (fd === undefined) return;
      closeSync(fd);
      fd = undefined;
    },
  };
}

/** The journal's events, for tests and tools. */
export function parseJournal(text: string): (RunEvent & { readonly at: string })[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RunEvent & { at: string });
}
