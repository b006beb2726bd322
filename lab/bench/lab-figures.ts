/**
 * What a running local lab costs the machine it runs on: how long `up` takes, the CPU it uses
 * idle and per page, and its memory, all read from /proc for the supervisor and every process
 * under it (the bench's own load generator is not part of the lab, and is not counted).
 */

import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux Node runs on). */
const TICKS_PER_SECOND = 100;

interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in ticks. */
  readonly cpuTicks: number;
}

function readStat(pid: number): ProcEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      ppid: Number(fields[1]),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
    };
  } catch {
    return undefined; // it exited meanwhile
  }
}

/** `root` and every process under it, now. */
export function processTree(root: number): number[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readStat(Number(name)))
    .filter((e): e is ProcEntry => e !== undefined);
  const children = new Map<number, number[]>();
  for (const e of all) children.set(e.ppid, [...(children.get(e.ppid) ?? []), e.pid]);
  const tree: number[] = [];
  const visit = (pid: number) => {
    tree.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  if (all.some((e) => e.pid === root)) visit(root);
  return tree;
}

/** CPU seconds one process has used so far; null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  const entry = readStat(pid);
  return entry ? entry.cpuTicks / TICKS_PER_SECOND : null;
}

/**
 * Seconds the process's main thread has spent runnable but waiting for a CPU (the run queue:
 * the second field of /proc/<pid>/schedstat); null when it is gone or the kernel keeps no
 * scheduler statistics. A thread that waits there is slow though it is not busy: the CPU is
 * held by others.
 */
export function runQueueSeconds(pid: number): number | null {
  try {
    const [, waitedNs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/);
    const ns = Number(waitedNs);
    return Number.isFinite(ns) ? ns / 1e9 : null;
  } catch {
    return null;
  }
}

/** CPU seconds used so far by the tree under `root` (its processes alive now). */
export function cpuSeconds(root: number): number {
  return (
    processTree(root)
      .map((pid) => readStat(pid)?.cpuTicks ?? 0)
      .reduce((a, b) => a + b, 0) / TICKS_PER_SECOND
  );
}

export interface LabMemory {
  readonly processes: number;
  /** Resident set sizes added up: pages shared between processes (the node binary) count once per process. */
  readonly rssMiB: number;
  /**
   * Proportional set sizes added up: a shared page counts as its share in each process, so this is
   * the memory the lab really takes from the machine.
   */
  readonly pssMiB: number;
  /** The largest process's RSS. */
  readonly largestRssMiB: number;
}

function rollup(pid: number): { rssKiB: number; pssKiB: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rssKiB: field('Rss'), pssKiB: field('Pss') };
  } catch {
    return undefined;
  }
}

export function labMemory(root: number): LabMemory {
  const sizes = processTree(root)
    .map(rollup)
    .filter((s): s is { rssKiB: number; pssKiB: number } => s !== undefined);
  const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
  return {
    processes: sizes.length,
    rssMiB: mib(sizes.reduce((a, s) => a + s.rssKiB, 0)),
    pssMiB: mib(sizes.reduce((a, s) => a + s.pssKiB, 0)),
    largestRssMiB: mib(Math.max(0, ...sizes.map((s) => s.rssKiB))),
  };
}

/**
 * The share of one core that `cpuSeconds` of CPU over `wallSeconds` is (1 = a whole core), to
 * 0.01% of a core: finer than /proc's 10 ms ticks over the bench's windows, and coarse enough
 * that 3.4% is never reported as 3%.
 */
export function shareOfCore(cpuSeconds: number, wallSeconds: number): number {
  return Math.round((cpuSeconds / wallSeconds) * 10_000) / 10_000;
}

/** The share of one core the tree under `root` used over `seconds` (see `shareOfCore`). */
export async function cpuShareOver(root: number, seconds: number): Promise<number> {
  const before = cpuSeconds(root);
  const began = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  const elapsed = (performance.now() - began) / 1_000;
  return shareOfCore(cpuSeconds(root) - before, elapsed);
}
