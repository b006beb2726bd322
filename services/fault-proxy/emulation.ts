import type { ProxyFault, ProxyFaultKind } from './faults.ts';

/**
 * What the proxy's faults do to the bytes, kept free of sockets so that it is tested with a
 * fake clock and a seeded random source.
 *
 * latency — like `tc netem delay` on a link, one way or both: a fault's delay ± uniform jitter
 * is what one request/response round trip pays in all. Its `requestShare` of it (0 to 1,
 * absent: 0) is paid by each chunk going to the backend, the rest by each chunk going back to
 * the client: 0 is netem on the backend pod's egress (responses), 1 delays requests only, 0.5
 * half each way. Several faults in force add up, way by way, by design: two latencies are two slow
 * links in a row, as Toxiproxy's toxics in a chain (`MAX_PROXY_FAULTS` bounds how many). Jitter
 * never reorders bytes: a chunk is released at max(its own time, the previous chunk's release in
 * the same direction). netem does reorder packets, but TCP hides that behind head-of-line
 * blocking, so this is what the application would see.
 *
 * loss — an EMULATION, by its effect on TCP. A proxy above TCP cannot drop a segment: the
 * bytes it reads are already acknowledged, and dropping them would corrupt the stream, not
 * slow it down. What an application behind a lossy link sees is TCP recovering: a lost
 * segment is sent again after a retransmission timeout (RTO), and everything behind it
 * waits. So each chunk (one read: ≤ 64 KiB, loopback's MTU, so about one burst of segments)
 * is lost with probability p in either direction, and a lost chunk — with everything behind
 * it on its connection — is held back for the RTO: 200 ms (Linux's TCP_RTO_MIN, the RTO of a
 * fast LAN), doubling for each further loss of it (exponential backoff, back to 200 ms once a
 * chunk gets through). A new connection's SYN is lost with probability p too, and costs the
 * initial RTO (1 s: RFC 6298, Linux's TCP_TIMEOUT_INIT), then 2 s more, and so on, before the
 * proxy connects upstream. Every event is capped at 30 s, by when a real connection would be
 * all but dead. Left out: fast retransmit, which recovers a loss followed by ≥ 3 more segments
 * in about one round trip — so long streams fare worse here than on a real link; the lab's
 * small request/response exchanges (a segment or two each way, nothing to trigger duplicate
 * ACKs) pay the RTO on a real link too.
 *
 * Each retransmission is rolled with the loss in force when it would be sent, judged by the
 * leases' expiry times when the chunk arrives: a lease that runs out stops further losses,
 * but a fault removed by hand does not shorten a wait already decided (as packets already in
 * netem's queue still take their time).
 *
 * reset — see `connection.ts`: a share of new connections is reset when the client's first
 * bytes arrive.
 */

/** Linux's TCP_RTO_MIN: the retransmission timeout of a segment on a fast network. */
export const SEGMENT_RTO_MS = 200;
/** Linux's TCP_TIMEOUT_INIT (RFC 6298): the first retransmission timeout of a SYN. */
export const SYN_RTO_MS = 1_000;
/** The most one loss event (a chunk or a SYN and its retransmissions) may cost. */
export const MAX_PENALTY_MS = 30_000;
// With the cap above, the doubling RTO reaches it long before this many rolls.
const MAX_TRANSMISSIONS = 32;

export type Direction = 'upstream' | 'downstream';

/** Combined probability (0..1) that at least one fault of `kind` in force at `t` fires. */
export function shareAt(faults: readonly ProxyFault[], kind: ProxyFaultKind, t: number): number {
  let passes = 1;
  for (const fault of faults) {
    if (fault.kind === kind && fault.expiresAt > t) passes *= 1 - (fault.params.percent ?? 0) / 100;
  }
  return 1 - passes;
}

/** The share of a latency fault's delay and jitter paid by each chunk going `direction`. */
export function latencyShare(params: ProxyFault['params'], direction: Direction): number {
  const toBackend = params.requestShare ?? 0;
  return direction === 'upstream' ? toBackend : 1 - toBackend;
}

/**
 * The delay the latency faults add to one chunk going `direction`: each one's share of its delay
 * ± uniform jitter, none below zero, added up; undefined when none puts anything on this way.
 */
export function latencyDraw(
  faults: readonly ProxyFault[],
  direction: Direction,
  random: () => number,
): number | undefined {
  let total: number | undefined;
  for (const fault of faults) {
    if (fault.kind !== 'latency') continue;
    const share = latencyShare(fault.params, direction);
    // Not drawn for a way the fault leaves alone, so that a one-way fault does not shift the other dice.
    if (share <= 0) continue;
    const { delayMs = 0, jitterMs = 0 } = fault.params;
    total = (total ?? 0) + Math.max(0, share * (delayMs + (random() * 2 - 1) * jitterMs));
  }
  return total;
}

/**
 * What the latency faults did to one chunk: none was in force (`none`); some were, but they put
 * nothing on its way (`other-way`: they delay the other direction only); they delayed it.
 */
export type LatencyEffect = 'none' | 'other-way' | 'delayed';

export interface Retransmissions {
  /** Time the losses cost before the transmission that got through. */
  readonly penaltyMs: number;
  readonly lost: number;
  /** Transmissions rolled for loss (the lost ones and the one that got through). */
  readonly rolls: number;
  /** The cap was reached: delivered after MAX_PENALTY_MS whatever the dice said. */
  readonly capped: boolean;
}

/**
 * Rolls loss for a transmission sent at `start` and its retransmissions, the first after
 * `firstRtoMs` and each later one after twice the previous wait. `lossAt(t)` is the loss
 * probability in force at `t`; no roll is made (the random source is not drawn) where it is 0.
 */
export function retransmissions(
  start: number,
  firstRtoMs: number,
  lossAt: (t: number) => number,
  random: () => number,
): Retransmissions {
  let penaltyMs = 0;
  let rto = firstRtoMs;
  let lost = 0;
  let rolls = 0;
  while (rolls < MAX_TRANSMISSIONS) {
    const p = lossAt(start + penaltyMs);
    if (p <= 0) return { penaltyMs, lost, rolls, capped: false };
    rolls++;
    if (random() >= p) return { penaltyMs, lost, rolls, capped: false };
    lost++;
    if (penaltyMs + rto >= MAX_PENALTY_MS) break;
    penaltyMs += rto;
    rto *= 2;
  }
  return { penaltyMs: MAX_PENALTY_MS, lost, rolls, capped: true };
}

/** Loss of a new connection's SYN, rolled with the faults in force (by their expiry) over time. */
export function synLoss(faults: readonly ProxyFault[], now: number, random: () => number): Retransmissions {
  return retransmissions(now, SYN_RTO_MS, (t) => shareAt(faults, 'loss', t), random);
}

export interface LaneObserver {
  /** A chunk left the lane `holdMs` after it arrived (loss and the order of bytes included). */
  released(direction: Direction, holdMs: number, latency: LatencyEffect): void;
  /** Loss was rolled for a chunk (only while a loss fault is in force). */
  segment(direction: Direction, result: Retransmissions): void;
}

export interface LaneOptions {
  readonly direction: Direction;
  readonly clock: () => number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  /** The faults in force now. */
  readonly faults: () => readonly ProxyFault[];
  readonly observer?: LaneObserver;
}

interface Queued {
  readonly chunk: Buffer;
  readonly arrivedAt: number;
  readonly releaseAt: number;
  readonly latency: LatencyEffect;
}

/**
 * One direction of one connection: chunks go in as they are read, and come out in the same
 * order once their time has come. Latency and loss apply to both directions.
 */
export class Lane {
  readonly #options: LaneOptions;
  #queue: Queued[] = [];
  #head = 0;
  #lastReleaseAt = Number.NEGATIVE_INFINITY;
  #queuedBytes = 0;

  constructor(options: LaneOptions) {
    this.#options = options;
  }

  /** Queues a chunk; returns when it is due. */
  push(chunk: Buffer): number {
    const { clock, random, direction, observer } = this.#options;
    const now = clock();
    const faults = this.#options.faults();
    if (faults.length === 0) return this.#hold(chunk, now, now, 'none');
    const delay = latencyDraw(faults, direction, random);
    const latency: LatencyEffect =
      delay !== undefined ? 'delayed' : faults.some((f) => f.kind === 'latency') ? 'other-way' : 'none';
    const loss = retransmissions(now, SEGMENT_RTO_MS, (t) => shareAt(faults, 'loss', t), random);
    if (loss.rolls > 0) observer?.segment(direction, loss);
    return this.#hold(chunk, now, now + (delay ?? 0) + loss.penaltyMs, latency);
  }

  /** Holds a chunk until `dueAt`, or until the chunk before it leaves if that is later. */
  #hold(chunk: Buffer, now: number, dueAt: number, latency: LatencyEffect): number {
    const releaseAt = Math.max(dueAt, this.#lastReleaseAt);
    this.#lastReleaseAt = releaseAt;
    this.#queue.push({ chunk, arrivedAt: now, releaseAt, latency });
    this.#queuedBytes += chunk.length;
    return releaseAt;
  }

  /** Takes the chunks due by `now`, oldest first. */
  due(now = this.#options.clock()): Buffer[] {
    const out: Buffer[] = [];
    while (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head]!;
      if (next.releaseAt > now) break;
      this.#head++;
      this.#queuedBytes -= next.chunk.length;
      this.#options.observer?.released(this.#options.direction, now - next.arrivedAt, next.latency);
      out.push(next.chunk);
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  /** When the oldest queued chunk is due; undefined when nothing is queued. */
  nextAt(): number | undefined {
    return this.#queue[this.#head]?.releaseAt;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get queuedChunks(): number {
    return this.#queue.length - this.#head;
  }
}
