import { ConfigError } from './env.ts';

/** A started server, as every lab entry point has one. */
export interface Stoppable {
  close(): Promise<void>;
}

/**
 * Runs one lab process: starts it, and stops it cleanly on SIGTERM, SIGINT, or when the
 * local lab's supervisor goes away. A ConfigError stops it at once with exit 2 and a message
 * naming the variable.
 * @param name what the process is, for the error message (`account`, `fault-proxy`)
 */
export async function runProcess(name: string, start: () => Promise<Stoppable>): Promise<void> {
  let running: Stoppable;
  try {
    running = await start();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chaos-lab ${name}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    running.close().finally(() => process.exit(code));
    // A connection that will not close must not keep a stopped process alive.
    setTimeout(() => process.exit(code), 3_000).unref();
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // Started by the local lab's supervisor over an IPC channel: when the supervisor goes
  // away (even killed with SIGKILL) the channel closes, and no process outlives it.
  if (process.send) process.on('disconnect', () => stop(0));
}
