/**
 * Lease bookkeeping shared by every injector (the in-process fault agent, the fault proxy):
 * a fault is a lease that ends by itself unless renewed, so a crashed or interrupted
 * experiment runner can never leave a service broken (the complaint most often made about
 * Chaos Mesh, Litmus and xk6-disruptor).
 *
 * Expiry is checked lazily on every read, so nobody ever sees a stale lease, and by one
 * timer for the earliest expiry, so a lease also ends (and is counted and logged) while
 * nobody reads.
 *
 * The HTTP routes over a book are `lease-router.ts`; the bounds of a lease, `fault-bounds.ts`.
 */

export interface Lease<K extends string = string, P = Readonly<Record<string, number>>> {
  readonly id: string;
  readonly kind: K;
  readonly params: P;
  readonly leaseMs: number;
  /** When this lease was first applied; a renewal of the same kind keeps it. */
  readonly appliedAt: number;
  readonly expiresAt: number;
}

export interface LeaseBookOptions<K extends string, P> {
  /** @default Date.now */
  readonly clock?: () => number;
  /** Told once about every lease that ran out, when the book notices (a read or its timer). */
  readonly onExpire?: (lease: Lease<K, P>) => void;
}

export interface LeaseBook<K extends string, P> {
  /** Applies a new lease, or renews the one with this id (new params, new expiry). */
  apply(id: string, kind: K, params: P, leaseMs: number): { lease: Lease<K, P>; renewed: boolean };
  /** Active, unexpired leases, oldest first: the same frozen array until the book changes. */
  list(): readonly Lease<K, P>[];
  get(id: string): Lease<K, P> | undefined;
  /** False when there was no such lease (or it had already run out). */
  remove(id: string): boolean;
  /** Removes every lease; how many were active. */
  clear(): number;
  /** Stops the timer; the book stays readable. */
  close(): void;
}

// An injected clock may not move with real time: the timer never spins faster than this.
const MIN_TIMER_MS = 10;

export function createLeaseBook<K extends string, P>(options: LeaseBookOptions<K, P> = {}): LeaseBook<K, P> {
  const clock = options.clock ?? Date.now;
  const leases = new Map<string, Lease<K, P>>();
  let timer: NodeJS.Timeout | undefined;
  // Read on every request and every chunk a proxy relays: a read with nothing due to expire
  // neither walks the leases nor makes an array. `earliest` is never later than the first expiry.
  let earliest = Number.POSITIVE_INFINITY;
  let listed: readonly Lease<K, P>[] | undefined;

  function changed(): void {
    listed = undefined;
  }

  function sweep(): void {
    const now = clock();
    if (now < earliest) return;
    earliest = Number.POSITIVE_INFINITY;
    for (const lease of leases.values()) {
      if (lease.expiresAt <= now) {
        leases.delete(lease.id);
        changed();
        options.onExpire?.(lease);
      } else if (lease.expiresAt < earliest) {
        earliest = lease.expiresAt;
      }
    }
  }

  /** One timer for the earliest expiry. Unref'd: a pending lease must not keep a stopping process alive. */
  function arm(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (leases.size === 0) return;
    const first = Math.min(...[...leases.values()].map((l) => l.expiresAt));
    timer = setTimeout(
      () => {
        sweep();
        arm();
      },
      Math.max(first - clock(), MIN_TIMER_MS),
    );
    timer.unref();
  }

  return {
    apply(id, kind, params, leaseMs) {
      sweep();
      const previous = leases.get(id);
      const now = clock();
      const lease: Lease<K, P> = Object.freeze({
        id,
        kind,
        params,
        leaseMs,
        appliedAt: previous && previous.kind === kind ? previous.appliedAt : now,
        expiresAt: now + leaseMs,
      });
      leases.set(id, lease);
      changed();
      earliest = Math.min(earliest, lease.expiresAt);
      arm();
      return { lease, renewed: previous !== undefined };
    },
    list() {
      sweep();
      listed ??= Object.freeze([...leases.values()]);
      return listed;
    },
    get(id) {
      sweep();
      return leases.get(id);
    },
    remove(id) {
      sweep();
      const removed = leases.delete(id);
      if (removed) changed();
      arm();
      return removed;
    },
    clear() {
      sweep();
      const removed = leases.size;
      leases.clear();
      changed();
      arm();
      return removed;
    },
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
