import type { LoopDelayDetector } from '../loop-delay-detector.ts';
import type { Policy } from './chain.ts';
import type { PolicyEvents } from './events.ts';

export interface LoopDelayShedOptions<C, R> {
  /** Says when the process's own event loop has been late for too long. */
  readonly detector: Pick<LoopDelayDetector, 'shedding' | 'snapshot'>;
  readonly events: PolicyEvents;
  /** The answer for a call turned away. */
  readonly rejected: (call: C) => R;
  /** Calls in flight now. */
  readonly inFlight: () => number;
  /**
   * Below this many calls in flight nothing is refused, however late the loop (CoDel drops
   * nothing while less than a packet is queued): a gateway serving a handful of pages is not
   * the bottleneck, whatever else holds the CPU. @default 0
   */
  readonly minInFlight?: number;
}

/**
 * Admission by queueing time: while the detector says the event loop is the bottleneck, a new
 * call is answered at once with `rejected`, before any work is done for it. Outside a bulkhead,
 * it is what sheds when the queue is in front of the process (requests the loop has not read
 * yet) rather than inside it (pages in flight).
 */
export function shedOnLoopDelay<C, R>({
  detector,
  events,
  rejected,
  inFlight,
  minInFlight = 0,
}: LoopDelayShedOptions<C, R>): Policy<C, R> {
  return (next) => async (call) => {
    if (detector.shedding() && inFlight() >= minInFlight) {
      events.emit({ type: 'loop-delay-rejected', delayMs: detector.snapshot().delayMs });
      return rejected(call);
    }
    return next(call);
  };
}
