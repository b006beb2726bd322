/**
 * Entry point of every lab process — one image, the service chosen by its first argument
 * (or `SERVICE`): `node --import tsx services/main.ts account`.
 * Configuration comes from the environment; a bad value stops the process at once (exit 2)
 * with a message naming the variable.
 */

import { ConfigError } from './lib/env.ts';
import { BACKENDS, isBackendName } from './topology.ts';

interface Running {
  readonly url: string;
  close(): Promise<void>;
}

async function start(service: string): Promise<Running> {
  if (service === 'gateway') {
    const { gatewayConfigFromEnv, startGateway } = await import('./gateway/server.ts');
    return startGateway(gatewayConfigFromEnv(process.env));
  }
  if (isBackendName(service)) {
    const { backendConfigFromEnv, startBackend } = await import('./backends/server.ts');
    return startBackend(backendConfigFromEnv(service, process.env));
  }
  throw new ConfigError(
    `unknown service ${JSON.stringify(service)}: expected gateway or one of ${BACKENDS.join(', ')}`,
  );
}

async function main(): Promise<void> {
  const service = process.argv[2] ?? process.env.SERVICE ?? '';
  let running: Running;
  try {
    running = await start(service);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chaos-lab ${service || '(no service)'}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    running.close().finally(() => process.exit(code));
    // A connection that will not close must not keep a stopped instance alive.
    setTimeout(() => process.exit(code), 3_000).unref();
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // Started by the local lab's supervisor over an IPC channel: when the supervisor goes
  // away (even killed with SIGKILL) the channel closes, and no instance outlives it.
  if (process.send) process.on('disconnect', () => stop(0));
}

await main();
