import { Counter, Gauge, type Registry } from 'prom-client';
import type { ServiceContext } from './service-app.ts';

/**
 * Goroutine-style background work, as in the seed notes: a panic inside a goroutine is not
 * caught by the request's recovery and kills the whole process, so Go services launch
 * background work through a `Go(func)` wrapper that recovers, logs and counts. Node is the
 * same: a throw in a callback nobody awaits is an uncaught exception.
 *
 * With recovery on, `go` is that wrapper. With recovery off it deliberately behaves like a
 * bare `go func()`: the error is rethrown outside any handler and the process dies.
 */

export interface Launcher {
  /** Runs `fn` fire-and-forget on a later tick; `task` names it in logs and metrics. */
  go(task: string, fn: () => unknown): void;
  /** Tasks launched and not yet settled. */
  inFlight(): number;
}

export interface LauncherOptions {
  readonly ctx: ServiceContext;
  /** Asked when a task fails: recover (true) or let the process die (false). */
  readonly recovery: () => boolean;
  /** Rolled once per task; true makes the task throw (the worker-panic fault). */
  readonly injectPanic?: () => boolean;
}

export const INJECTED_PANIC_MESSAGE = 'injected worker panic (chaos: worker-panic)';

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Whatever was thrown, as an Error so the log has a stack (a thrown string has none). */
function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(`non-error thrown: ${String(value)}`);
}

export function createLauncher(options: LauncherOptions): Launcher {
  const { ctx } = options;
  let running = 0;

  const tasks = counter(ctx.metrics, 'worker_tasks_total', 'Background tasks finished, by outcome', [
    'task',
    'outcome',
  ]);
  const recovered = counter(
    ctx.metrics,
    'worker_panics_recovered_total',
    'Panics in background tasks that were recovered instead of killing the process',
    ['task'],
  );
  if (!ctx.metrics.getSingleMetric('worker_tasks_in_flight')) {
    new Gauge({
      name: 'worker_tasks_in_flight',
      help: 'Background tasks launched and not yet finished',
      registers: [ctx.metrics],
      collect() {
        this.set(running);
      },
    });
  }

  function succeeded(task: string): void {
    running--;
    tasks.inc({ task, outcome: 'ok' });
  }

  /** Counts and logs a panic; true when it was recovered, false when the process must die. */
  function panicked(task: string, thrown: unknown): boolean {
    running--;
    tasks.inc({ task, outcome: 'panic' });
    const err = asError(thrown);
    if (options.recovery()) {
      recovered.inc({ task });
      ctx.log.error({ err, task }, `recovered panic in background task ${task}`);
      return true;
    }
    ctx.log.fatal({ err, task }, `unrecovered panic in background task ${task}: the process dies`);
    return false;
  }

  function run(task: string, fn: () => unknown): void {
    let result: unknown;
    try {
      if (options.injectPanic?.()) throw new Error(INJECTED_PANIC_MESSAGE);
      result = fn();
    } catch (err) {
      // Rethrown from a timer callback, outside every handler: an uncaught exception, exactly
      // like a panic in a bare goroutine.
      if (!panicked(task, err)) throw err;
      return;
    }
    if (isThenable(result)) {
      result.then(
        () => succeeded(task),
        (err: unknown) => {
          // Out of the promise chain first, or it would only be an unhandled rejection.
          if (!panicked(task, err)) {
            setImmediate(() => {
              throw err;
            });
          }
        },
      );
    } else {
      succeeded(task);
    }
  }

  // Task names are only known when launched; each one's recovered-panic series starts at zero
  // then, so a dashboard sees it before the first panic.
  const launched = new Set<string>();

  return {
    go(task, fn) {
      if (!launched.has(task)) {
        launched.add(task);
        recovered.inc({ task }, 0);
      }
      running++;
      // Never on the caller's stack: the request has already moved on when the task runs.
      setImmediate(() => run(task, fn));
    },
    inFlight: () => running,
  };
}
