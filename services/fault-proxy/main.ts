/**
 * Entry point of one fault proxy: `node --import tsx services/fault-proxy/main.ts`, configured
 * by LISTEN_PORT, LISTEN_HOST, UPSTREAM, ADMIN_PORT, INSTANCE_ID, CHAOS_ADMIN_TOKEN and
 * LOG_LEVEL. A bad value stops the process at once (exit 2) with a message naming the variable.
 */

import { ConfigError } from '../lib/env.ts';
import { faultProxyConfigFromEnv } from './config.ts';
import { type RunningFaultProxy, startFaultProxy } from './proxy.ts';

async function main(): Promise<void> {
  let running: RunningFaultProxy;
  try {
    running = await startFaultProxy(faultProxyConfigFromEnv(process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chaos-lab fault-proxy: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    running.close().finally(() => process.exit(code));
    // A connection that will not close must not keep a stopped proxy alive.
    setTimeout(() => process.exit(code), 3_000).unref();
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // Started by the local lab's supervisor over an IPC channel: when the supervisor goes
  // away (even killed with SIGKILL) the channel closes, and no proxy outlives it.
  if (process.send) process.on('disconnect', () => stop(0));
}

await main();
