import type { LoopDelayDetector } from '../loop-delay-detector.ts';
import type { Policy } from './chain.ts';
import type { PolicyEvents } from './events.ts';

export interface LoopDelayGateOptions {
  /** Says when the process's own event loop has been late for too long. */
  readonly detector: Pick<LoopDelayDetector, 'shedding' | 'snapshot'>;
  /** Calls in flight now. */
  readonly inFlight: () => number;
  /**
   * Below this many calls in flight nothing is refused, however late the loop (CoDel drops
   * nothing while less than a packet is queued): a gateway serving a handful of pages is not
   * the bottleneck, whatever else holds the CPU. @default 0
   */
  readonly minInFlight?: number;
  /**
   * After a refusal, the next calls are still refused while `minInFlight` or more are in flight,
   * for this long, even once the loop runs on time again (Kratos's BBR limiter keeps dropping for
   * a second after its last drop). Without it the loop's first on-time turn let through every
   * request queued in front of the process, and the loop was late again at once: at five times
   * its capacity the gateway admitted twice what it could serve, and most of it timed out.
   * @default 0 (refuse only while the detector says so)
   */
  readonly holdMs?: number;
  /** @default performance.now */
  readonly clock?: () => number;
}

export interface LoopDelayShedOptions<C, R> extends LoopDelayGateOptions {
  readonly events: PolicyEvents;
  /** The answer for a call turned away. */
  readonly rejected: (call: C) => R;
}

/**
 * The verdict of `shedOnLoopDelay`, kept apart so the gateway's front door (which refuses before
 * express reads the request) and the policy share one state.
 */
export class LoopDelayGate {
  readonly #options: LoopDelayGateOptions;
  #lastRefusedAt = Number.NEGATIVE_INFINITY;

  constructor(options: LoopDelayGateOptions) {
    this.#options = options;
  }

  /** Whether a new call is refused now; a refusal starts the hold again. */
  refuses(): boolean {
    const {
      detector,
      inFlight,
      minInFlight = 0,
      holdMs = 0,
      clock = () => performance.now(),
    } = this.#options;
    if (inFlight() < minInFlight) return false;
    const now = clock();
    if (!detector.shedding() && now - this.#lastRefusedAt >= holdMs) return false;
    this.#lastRefusedAt = now;
    return true;
  }

  /** How late the loop last ran. */
  delayMs(): number {
    return this.#options.detector.snapshot().delayMs;
  }
}

/**
 * Admission by queueing time: while the detector says the event loop is the bottleneck, a new
 * call is answered at once with `rejected`, before any work is done for it. Outside a bulkhead,
 * it is what sheds when the queue is in front of the process (requests the loop has not read
 * yet) rather than inside it (pages in flight). `gate` shares its verdict with another door.
 */
export function shedOnLoopDelay<C, R>(
  options:
    | LoopDelayShedOptions<C, R>
    | (Pick<LoopDelayShedOptions<C, R>, 'events' | 'rejected'> & { readonly gate: LoopDelayGate }),
): Policy<C, R> {
  const { events, rejected } = options;
  const gate = 'gate' in options ? options.gate : new LoopDelayGate(options);
  return (next) => async (call) => {
    if (gate.refuses()) {
      events.emit({ type: 'loop-delay-rejected', delayMs: gate.delayMs() });
      return rejected(call);
    }
    return next(call);
  };
}
