/**
 * Entry point of every lab process — one image, the service chosen by its first argument
 * (or `SERVICE`): `node --import tsx services/main.ts account`.
 * Configuration comes from the environment; a bad value stops the process at once (exit 2)
 * with a message naming the variable.
 */
import { ConfigError } from './lib/env.ts';
import { runProcess, type Stoppable } from './lib/process-lifetime.ts';
import { GATEWAY_SERVICE, SERVICE_ENV } from './names.ts';
import { BACKENDS, isBackendName } from './topology.ts';

async function start(service: string): Promise<Stoppable> {
  if (service === GATEWAY_SERVICE) {
    const { gatewayConfigFromEnv, startGateway } = await import('./gateway/server.ts');
    return startGateway(gatewayConfigFromEnv(process.env));
  }
  if (isBackendName(service)) {
    const { backendConfigFromEnv, startBackend } = await import('./backends/server.ts');
    return startBackend(backendConfigFromEnv(service, process.env));
  }
  throw new ConfigError(
    `unknown service ${JSON.stringify(service)}: expected ${GATEWAY_SERVICE} or one of ${BACKENDS.join(', ')}`,
  );
}

const service = process.argv[2] ?? process.env[SERVICE_ENV.service] ?? '';
await runProcess(service || '(no service)', () => start(service));
