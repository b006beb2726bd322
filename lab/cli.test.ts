import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from './cli.ts';
import type { Io } from './io.ts';
import { startStandInSupervisor } from './local/__fixtures__/stand-in-supervisor.ts';
import { type LabState, readState, writeState } from './local/state.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let home: string;

async function run(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: { CHAOS_LAB_HOME: home },
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

let supervisor: Awaited<ReturnType<typeof startStandInSupervisor>>;
beforeAll(async () => {
  supervisor = await startStandInSupervisor();
});
afterAll(async () => {
  await supervisor.stop();
});

function labState(instances: LabState['instances'], pid = supervisor.pid): LabState {
  return {
    version: 1,
    pid,
    startedAt: '2025-01-01T00:00:00.000Z',
    portBase: 18_000,
    controlUrl: 'http://127.0.0.1:9',
    adminToken: 'admin-token-0123456789',
    trust: { mode: 'half', key: 'trust-key-0123456789' },
    workerRecovery: true,
    gateways: {
      naive: 'http://127.0.0.1:1',
      parallel: 'http://127.0.0.1:2',
      resilient: 'http://127.0.0.1:3',
    },
    instances,
    logDir: path.join(home, 'logs'),
  };
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

beforeEach(() => {
  home = mkdtempSync(path.join(tmpdir(), 'chaos-lab-cli-'));
});
afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

describe('chaos-lab usage errors (exit 2, one line and a hint)', () => {
  it.each([
    [
      ['fault', 'add', 'http-delay', 'coin', '--delay', '3x'],
      /'--delay <duration>' argument '3x' is invalid.*e\.g\. 300ms/,
    ],
    [['fault', 'add', 'http-delay', 'coin', '--delay', '300'], /"300" is not a duration/],
    [
      ['fault', 'add', 'http-delay', 'coin', '--delay', '300ms', '--for', 'soon'],
      /'--for <duration>'.*e\.g\. 300ms/,
    ],
    [
      ['fault', 'add', 'http-delay', 'coin', '--delay', '300ms', '--for', '50ms'],
      /--for must be from 100ms to 1h/,
    ],
    [
      ['fault', 'add', 'http-delay', 'nosuch', '--delay', '300ms'],
      /'nosuch' is invalid for argument 'service'.*coin, gateway/,
    ],
    [['fault', 'add', 'latency-storm', 'coin'], /'latency-storm' is invalid for argument 'kind'.*http-delay/],
    [['fault', 'add', 'http-delay', 'coin'], /http-delay needs --delay\nhint: e\.g\. --delay 300ms/],
    [
      ['fault', 'add', 'worker-panic', 'coin', '--delay', '1s'],
      /--delay does not apply to worker-panic\nhint: worker-panic takes --percent/,
    ],
    [
      ['fault', 'add', 'http-error', 'coin', '--status', '200'],
      /--status expects an integer from 400 to 599/,
    ],
    [['fault', 'add', 'http-error', 'coin', '--percent', '150'], /--percent expects a number from 0 to 100/],
    [['fault', 'add', 'http-error', 'coin', '--id', 'Bad_Id'], /--id "Bad_Id" is not a valid fault id/],
    // `.` and `..` would reach the lab as /__chaos/faults/ (every fault) and /__chaos/.
    [['fault', 'clear', '--id', '.'], /--id "\." is not a valid fault id: expected lowercase letters/],
    [['fault', 'clear', 'coin', '--id', '..'], /--id "\.\." is not a valid fault id/],
    [['fault', 'add', 'http-error', 'coin', '--id', '.'], /--id "\." is not a valid fault id/],
    [
      ['fault', 'add', 'http-error', 'coin', '--instance', 'coin-1', '--instance', 'coin-2'],
      /'--instance <id>' argument 'coin-2' is invalid\. given twice \(coin-1, then coin-2\)/,
    ],
    [['fault', 'recovery', 'maybe', 'archive'], /'maybe' is invalid for argument 'setting'/],
    [['up', '--port-base', '80'], /'--port-base <n>' argument '80' is invalid.*1024 to/],
    [['up', '--trust', 'total'], /'total' is invalid.*Allowed choices are zero, half, full/],
    [
      ['up', '--context', 'other'],
      /--context, --no-build, --no-grafana, --timeout and --force-conflicts apply to --target kind only\nhint: npx chaos-lab up --target kind --help/,
    ],
    [
      ['up', '--target', 'kind', '--detach'],
      /--detach and --port-base apply to the local lab only\nhint: npx chaos-lab up --target kind\n/,
    ],
    [['down', '--delete-cluster'], /--context and --delete-cluster apply to --target kind only/],
    [['up', '--target', 'minikube'], /'minikube' is invalid.*Allowed choices are local, kind/],
    [
      ['run', 'weak-dependency-errors', '--out', '/dev/null/results', '--no-live'],
      /^chaos-lab: --out \/dev\/null\/results: cannot write run folders in \/dev\/null\/results \(\/dev\/null is not a folder\)\nhint: /,
    ],
    [['launch'], /unknown command 'launch'/],
    [['status', '--verbose'], /unknown option '--verbose'/],
  ])('%j', async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(result.stdout).toBe('');
  });

  it.each([['status'], ['down'], ['fault', 'list'], ['fault', 'clear'], ['up', '--no-live']])(
    'says what is wrong with a corrupt state file, without a stack trace: %j',
    async (...argv) => {
      writeFileSync(path.join(home, 'state.json'), '{not json', { mode: 0o600 });
      const result = await run(...argv);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^chaos-lab: \S+state\.json is not valid JSON; remove it if no lab is running\n/,
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
    },
  );

  it('shows help and exits 0 when asked', async () => {
    const result = await run('fault', 'add', '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/--delay <duration>/);
  });
});

describe('chaos-lab without a lab', () => {
  it('status says no lab is running and how to start one (exit 1)', async () => {
    const result = await run('status');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^chaos-lab: no lab is running \(start one with: npx chaos-lab up\)\n/);
  });

  it('fault commands say the same (exit 1) once their input is valid', async () => {
    expect((await run('fault', 'list')).code).toBe(1);
    expect((await run('fault', 'add', 'http-delay', 'coin', '--delay', '300ms')).stderr).toMatch(
      /no lab is running/,
    );
  });

  it('down has nothing to stop (exit 0)', async () => {
    const result = await run('down');
    expect(result).toMatchObject({ code: 0, stdout: 'no lab is running; nothing to stop\n' });
  });

  it('a stale state file (its supervisor gone) is removed and reported', async () => {
    writeState(home, labState([], 2 ** 22 + 7)); // above the default pid_max
    const result = await run('status');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/removed a stale state file: its supervisor \(pid 4194311\) is gone/);
    expect(readState(home)).toBeUndefined();
  });
});

describe('chaos-lab fault, against fake agents on loopback', () => {
  let servers: Server[] = [];
  const seen: { instance: string; method: string; url: string; body: unknown; auth: string }[] = [];

  afterEach(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    servers = [];
    seen.length = 0;
  });

  /** An agent that accepts (201) or refuses (400) every PUT, and records what it got. */
  async function agent(id: string, refuses = false): Promise<LabState['instances'][number]> {
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => {
        text += c;
      });
      req.on('end', () => {
        seen.push({
          instance: id,
          method: req.method ?? '',
          url: req.url ?? '',
          body: text ? JSON.parse(text) : undefined,
          auth: req.headers.authorization ?? '',
        });
        res.setHeader('content-type', 'application/json');
        if (req.method === 'PUT' && refuses) {
          res.statusCode = 400;
          res.end(
            JSON.stringify({
              error: { status: 400, reason: 'INVALID_FAULT', message: 'params.delayMs: too big' },
            }),
          );
          return;
        }
        res.statusCode = req.method === 'PUT' ? 201 : 200;
        if (req.method === 'PUT') res.end(JSON.stringify({ fault: { id: 'x' } }));
        else if (req.method === 'DELETE') res.end(JSON.stringify({ removed: 1 }));
        else {
          res.end(
            JSON.stringify({
              service: 'coin',
              instance: id,
              faults: [],
              settings: { workerRecovery: true, overridden: false, expiresAt: null },
            }),
          );
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const { port } = server.address() as AddressInfo;
    return { id, service: id.replace(/-\d+$/, ''), url: `http://127.0.0.1:${port}`, port };
  }

  it('applies one fault id to every instance of the service, with the token from the state file', async () => {
    writeState(home, labState([await agent('coin-1'), await agent('coin-2'), await agent('like-1')]));
    const result = await run(
      'fault',
      'add',
      'http-delay',
      'coin',
      '--delay',
      '300ms',
      '--jitter',
      '20ms',
      '--for',
      '4s',
    );
    expect(result.code).toBe(0);
    expect(seen.map((s) => s.instance).sort()).toEqual(['coin-1', 'coin-2']);
    const [first, second] = seen;
    expect(first?.url).toMatch(/^\/__chaos\/faults\/cli-http-delay-[0-9a-f]{4}$/);
    expect(second?.url).toBe(first?.url);
    expect(first).toMatchObject({
      method: 'PUT',
      auth: 'Bearer admin-token-0123456789',
      body: { kind: 'http-delay', params: { delayMs: 300, jitterMs: 20 }, leaseMs: 4_000 },
    });
    expect(result.stdout).toMatch(
      /^applied http-delay cli-http-delay-[0-9a-f]{4} \(delayMs=300 jitterMs=20\) on coin-1, coin-2 for 4s\n/,
    );
  });

  it('defaults to a 60 s lease and 100 % for worker-panic, on one --instance', async () => {
    writeState(home, labState([await agent('archive-1'), await agent('archive-2')]));
    const result = await run('fault', 'add', 'worker-panic', 'archive', '--instance', 'archive-1');
    expect(result.code).toBe(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      instance: 'archive-1',
      body: { kind: 'worker-panic', params: { percent: 100 }, leaseMs: 60_000 },
    });
  });

  it('names the valid ids for an unknown --instance (exit 2), before calling anyone', async () => {
    writeState(home, labState([await agent('coin-1'), await agent('coin-2')]));
    const result = await run('fault', 'add', 'http-delay', 'coin', '--delay', '1s', '--instance', 'coin-3');
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('chaos-lab: no instance "coin-3" of coin\nhint: valid ids: coin-1, coin-2\n');
    expect(seen).toEqual([]);
  });

  it('applies nothing when one agent refuses: the others are rolled back (exit 1)', async () => {
    writeState(home, labState([await agent('coin-1'), await agent('coin-2', true)]));
    const result = await run('fault', 'add', 'http-delay', 'coin', '--delay', '1s');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^chaos-lab: injecting http-delay \S+ on coin: coin-2 refused PUT .*: 400 INVALID_FAULT — params\.delayMs: too big\n/,
    );
    const rollback = seen.filter((s) => s.method === 'DELETE');
    expect(rollback.map((s) => s.instance)).toEqual(['coin-1']);
  });

  it('reports an instance it cannot reach (exit 1) but still lists the others', async () => {
    const port = await closedPort();
    const gone = { id: 'coin-2', service: 'coin', url: `http://127.0.0.1:${port}`, port };
    writeState(home, labState([await agent('coin-1'), gone]));
    const result = await run('fault', 'list', '--json');
    expect(result.code).toBe(1);
    const listed = JSON.parse(result.stdout) as { faults: unknown[]; unreachable: { instance: string }[] };
    expect(listed.unreachable.map((u) => u.instance)).toEqual(['coin-2']);
    expect(result.stderr).toContain(`coin-2 (http://127.0.0.1:${port}): connection refused`);
  });

  it('sets worker recovery for a while, and clears everything on a service', async () => {
    writeState(home, labState([await agent('archive-1'), await agent('archive-2')]));
    expect(
      (await run('fault', 'recovery', 'off', 'archive', '--instance', 'archive-1', '--for', '30s')).code,
    ).toBe(0);
    expect(seen[0]).toMatchObject({
      method: 'PUT',
      url: '/__chaos/settings',
      body: { workerRecovery: false, leaseMs: 30_000 },
    });
    expect((await run('fault', 'clear', 'archive')).code).toBe(0);
    expect(seen.slice(1).map((s) => `${s.method} ${s.url}`)).toEqual([
      'DELETE /__chaos/faults',
      'DELETE /__chaos/faults',
    ]);
  });
});
