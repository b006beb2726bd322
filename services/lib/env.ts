/**
 * Configuration from the environment, failing fast with a message that names the variable,
 * what it held and what would be valid.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export function requireEnv(env: Env, name: string, hint: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new ConfigError(`${name} is not set: ${hint}`);
  return value;
}

export function optionalEnv(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function envInt(
  env: Env,
  name: string,
  fallback: number,
  range: { min: number; max: number },
): number {
  const raw = optionalEnv(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected an integer from ${range.min} to ${range.max}`,
    );
  }
  return value;
}

export function envChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = optionalEnv(env, name);
  if (raw === undefined) return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected one of ${choices.join(', ')}`);
  }
  return raw as T;
}

export function envBool(env: Env, name: string, fallback: boolean): boolean {
  const raw = optionalEnv(env, name);
  if (raw === undefined) return fallback;
  if (['on', 'true', '1', 'yes'].includes(raw)) return true;
  if (['off', 'false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected on or off`);
}
