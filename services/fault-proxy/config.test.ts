import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/env.ts';
import { faultProxyConfigFromEnv, parseHostPort } from './config.ts';

const ENV = { UPSTREAM: '127.0.0.1:18081', LISTEN_PORT: '28081', ADMIN_PORT: '29081' };

describe('fault proxy configuration', () => {
  it('reads the environment, with defaults for the optional variables', () => {
    expect(
      faultProxyConfigFromEnv({ ...ENV, INSTANCE_ID: 'coin-1-proxy', CHAOS_ADMIN_TOKEN: 's3cret' }),
    ).toEqual({
      instanceId: 'coin-1-proxy',
      listenHost: '127.0.0.1',
      listenPort: 28081,
      upstream: { host: '127.0.0.1', port: 18081 },
      adminPort: 29081,
      adminToken: 's3cret',
    });
    expect(faultProxyConfigFromEnv({ ...ENV, LISTEN_HOST: '0.0.0.0' })).not.toHaveProperty('adminToken');
    expect(parseHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseHostPort('coin-1:8085')).toEqual({ host: 'coin-1', port: 8085 });
  });

  it.each([
    [{ ...ENV, UPSTREAM: undefined }, /^UPSTREAM is not set: .*host:port/],
    [{ ...ENV, UPSTREAM: '18081' }, /^UPSTREAM="18081" is invalid: expected host:port/],
    [{ ...ENV, UPSTREAM: 'localhost:0' }, /port from 1 to 65535/],
    [{ ...ENV, UPSTREAM: 'localhost:99999' }, /UPSTREAM="localhost:99999"/],
    [{ ...ENV, LISTEN_PORT: '' }, /^LISTEN_PORT is not set/],
    [{ ...ENV, LISTEN_PORT: 'http' }, /^LISTEN_PORT="http" is invalid: expected an integer from 0 to 65535/],
    [{ ...ENV, ADMIN_PORT: undefined }, /^ADMIN_PORT is not set/],
  ])('fails fast naming the variable: %j', (env, message) => {
    expect(() => faultProxyConfigFromEnv(env)).toThrow(ConfigError);
    expect(() => faultProxyConfigFromEnv(env)).toThrow(message);
  });
});

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

function start(env: Record<string, string>, ipc = false): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += String(d);
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}

/** Resolves with the admin URL once the proxy logs that it listens. */
function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += String(d);
      for (const line of out.split('\n')) {
        if (line.includes('"fault proxy listening"'))
          resolve((JSON.parse(line) as { adminUrl: string }).adminUrl);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening: ${out}`)));
  });
}

describe('fault proxy process', () => {
  it.concurrent('exits 2 naming the variable when the configuration is bad', async () => {
    const { code, stderr } = await exited(start({ LISTEN_PORT: '0', ADMIN_PORT: '0' }));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^chaos-lab fault-proxy: UPSTREAM is not set/);
  });

  it.concurrent('serves, and stops on SIGTERM', async () => {
    const child = start({ UPSTREAM: '127.0.0.1:9', LISTEN_PORT: '0', ADMIN_PORT: '0' });
    const exit = exited(child);
    const adminUrl = await listening(child);
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200);
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
  });

  it.concurrent('stops when the supervisor that spawned it goes away (IPC disconnect)', async () => {
    const child = start({ UPSTREAM: '127.0.0.1:9', LISTEN_PORT: '0', ADMIN_PORT: '0' }, true);
    const exit = exited(child);
    await listening(child);
    child.disconnect();
    expect((await exit).code).toBe(0);
  });
});
