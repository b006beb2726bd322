import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAULT_BOUNDS } from '../fault-bounds.ts';
import { MAX_PROXY_FAULTS, PROXY_FAULT_KINDS } from '../fault-proxy/faults.ts';
import { startFaultProxy } from '../fault-proxy/proxy.ts';
import { createFaultAgent, FAULT_KINDS, MAX_AGENT_FAULTS } from './fault-agent.ts';
import type { Lease } from './leases.ts';
import { createServiceApp, listen } from './service-app.ts';

/**
 * One contract for the lease routes of every injector: the same requests, over real HTTP on
 * 127.0.0.1, to a real fault agent app and a real fault proxy, must get the same answers.
 * Only the kinds differ; time is an injected clock, so expiry is exact and immediate.
 */

const TOKEN = 'contract-token-1234';
const T0 = 1_700_000_000_000;

interface Running {
  /** Base URL of the admin API, `…/__chaos`. */
  readonly url: string;
  close(): Promise<void>;
}

interface Injector {
  readonly name: string;
  readonly kinds: readonly string[];
  /** A kind that takes `{ percent }` alone, and one that takes `{ delayMs, jitterMs? }`. */
  readonly percentKind: string;
  readonly delayKind: string;
  /** A kind of the other injector, which this one must refuse. */
  readonly foreignKind: string;
  /** What the messages call it, and the most faults it holds in force. */
  readonly where: string;
  readonly maxFaults: number;
  start(token: string | undefined, clock: () => number): Promise<Running>;
}

const injectors: Injector[] = [
  {
    name: 'fault agent',
    kinds: FAULT_KINDS,
    percentKind: 'worker-panic',
    delayKind: 'http-delay',
    foreignKind: 'latency',
    where: 'instance',
    maxFaults: MAX_AGENT_FAULTS,
    async start(token, clock) {
      const { app, ctx, finalize } = createServiceApp({
        service: 'contract',
        instanceId: 'contract-1',
        log: pino({ level: 'silent' }),
        processMetrics: false,
      });
      const agent = createFaultAgent({
        ctx,
        ...(token ? { token } : {}),
        workerRecoveryDefault: true,
        clock,
      });
      app.use('/__chaos', agent.router);
      app.use(agent.middleware);
      finalize();
      const listening = await listen(app, 0, '127.0.0.1');
      return {
        url: `${listening.url}/__chaos`,
        close: async () => {
          agent.close();
          await listening.close();
        },
      };
    },
  },
  {
    name: 'fault proxy',
    kinds: PROXY_FAULT_KINDS,
    percentKind: 'loss',
    delayKind: 'latency',
    foreignKind: 'http-delay',
    where: 'proxy',
    maxFaults: MAX_PROXY_FAULTS,
    async start(token, clock) {
      const proxy = await startFaultProxy(
        {
          instanceId: 'contract-proxy',
          listenHost: '127.0.0.1',
          listenPort: 0,
          // Never dialled: no client connects to the data port here.
          upstream: { host: '127.0.0.1', port: 9 },
          adminPort: 0,
          ...(token ? { adminToken: token } : {}),
        },
        { clock, log: pino({ level: 'silent' }) },
      );
      return { url: `${proxy.adminUrl}/__chaos`, close: () => proxy.close() };
    },
  },
];

interface ErrorBody {
  readonly error: { status: number; reason: string; message: string; metadata: Record<string, string> };
  readonly requestId: string;
}

describe.each(injectors)('lease API of the $name', (injector) => {
  let now = T0;
  let running: Running;

  function admin(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
    return fetch(`${running.url}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  }

  const percentFault = (percent: number, leaseMs = 1000) => ({
    kind: injector.percentKind,
    params: { percent },
    leaseMs,
  });

  async function put(id: string, body: unknown): Promise<{ status: number; fault: Lease }> {
    const res = await admin('PUT', `/faults/${id}`, body);
    return { status: res.status, fault: ((await res.json()) as { fault: Lease }).fault };
  }

  async function listed(): Promise<Lease[]> {
    const res = await admin('GET', '/faults');
    expect(res.status).toBe(200);
    return ((await res.json()) as { faults: Lease[] }).faults;
  }

  async function expectInvalid(res: Response, field: string, problem: RegExp): Promise<void> {
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as ErrorBody;
    expect(error.reason).toBe('INVALID_FAULT');
    expect(error.metadata.field).toBe(field);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
    expect(error.message.slice(field.length + 2)).toMatch(problem);
  }

  beforeAll(async () => {
    running = await injector.start(TOKEN, () => now);
  });
  afterAll(() => running.close());
  afterEach(async () => {
    await admin('DELETE', '/faults');
    now = T0;
  });

  it('creates a lease: 201 with the fault, its params normalized and its expiry', async () => {
    const created = await put('slow', {
      kind: injector.delayKind,
      params: { delayMs: 300 },
      leaseMs: 20_000,
    });
    expect(created).toEqual({
      status: 201,
      fault: {
        id: 'slow',
        kind: injector.delayKind,
        params: { delayMs: 300, jitterMs: 0 },
        leaseMs: 20_000,
        appliedAt: T0,
        expiresAt: T0 + 20_000,
      },
    });
  });

  it('renews with a PUT of the same id: 200, new params and expiry, the first appliedAt', async () => {
    await put('p', percentFault(5, 1000));
    now += 600;
    const renewed = await put('p', percentFault(10, 2000));
    expect(renewed).toEqual({
      status: 200,
      fault: {
        id: 'p',
        kind: injector.percentKind,
        params: { percent: 10 },
        leaseMs: 2000,
        appliedAt: T0,
        expiresAt: T0 + 600 + 2000,
      },
    });
    expect(await listed()).toEqual([renewed.fault]);
  });

  it('lists active leases oldest first, saying which service and instance answers', async () => {
    const a = await put('a', percentFault(1));
    const b = await put('b', {
      kind: injector.delayKind,
      params: { delayMs: 5, jitterMs: 2 },
      leaseMs: 1000,
    });
    const res = await admin('GET', '/faults');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { service: string; instance: string; faults: Lease[] };
    expect(body.faults).toEqual([a.fault, b.fault]);
    expect(body.service).toEqual(expect.any(String));
    expect(body.instance).toEqual(expect.any(String));
  });

  it('ends a lease when it runs out, unless it was renewed', async () => {
    await put('short', percentFault(1, 1000));
    await put('renewed', percentFault(1, 1000));
    now += 999;
    expect((await listed()).map((f) => f.id)).toEqual(['short', 'renewed']);
    await put('renewed', percentFault(1, 1000));
    now += 1;
    expect((await listed()).map((f) => f.id)).toEqual(['renewed']);
    now += 999;
    expect(await listed()).toEqual([]);
  });

  it('deletes one lease: removed true, then false; the others stay', async () => {
    await put('a', percentFault(1));
    await put('b', percentFault(2));
    const first = await admin('DELETE', '/faults/a');
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ removed: true });
    expect(await (await admin('DELETE', '/faults/a')).json()).toEqual({ removed: false });
    expect((await listed()).map((f) => f.id)).toEqual(['b']);
  });

  it('deletes every lease at once, saying how many were active', async () => {
    await put('a', percentFault(1));
    await put('b', percentFault(2));
    await put('gone', percentFault(3, 100));
    now += 100;
    const res = await admin('DELETE', '/faults');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ removed: 2 });
    expect(await listed()).toEqual([]);
    expect(await (await admin('DELETE', '/faults')).json()).toEqual({ removed: 0 });
  });

  it('clears nothing for DELETE /faults/ (what an id of `.` becomes) and refuses a bad id to DELETE', async () => {
    await put('keep', percentFault(1, 5000));
    const slash = await admin('DELETE', '/faults/');
    expect(slash.status).toBe(404);
    await expectInvalid(await admin('DELETE', '/faults/Bad_Id'), 'id', /^expected lowercase letters/);
    expect((await listed()).map((f) => f.id)).toEqual(['keep']);
  });

  describe('refuses, with 400 INVALID_FAULT naming the field, and applies nothing', () => {
    const badIds: [string, string][] = [
      ['capitals and an underscore', 'Bad_Id'],
      ['a leading dash', '-x'],
      ['65 characters', 'a'.repeat(65)],
    ];
    it.each(badIds)('an id with %s', async (_what, id) => {
      await put('keep', percentFault(1, 5000));
      const before = await listed();
      await expectInvalid(
        await admin('PUT', `/faults/${id}`, percentFault(1)),
        'id',
        new RegExp(`^expected lowercase letters, digits and dashes \\(1-64.*got "${id}"$`),
      );
      expect(await listed()).toEqual(before);
    });

    const badBodies: [string, () => unknown, string, () => RegExp][] = [
      [
        'a kind of the other injector',
        () => ({ kind: injector.foreignKind, params: {}, leaseMs: 1000 }),
        'kind',
        () => new RegExp(`^expected one of ${injector.kinds.join(', ')}, got "${injector.foreignKind}"$`),
      ],
      ['no kind', () => ({ params: { percent: 1 }, leaseMs: 1000 }), 'kind', () => /got nothing$/],
      [
        'an unknown top-level key',
        () => ({ ...percentFault(1), service: 'coin' }),
        'service',
        () => /^unknown key; expected kind, params, leaseMs$/,
      ],
      [
        'an unknown parameter',
        () => ({ kind: injector.percentKind, params: { percent: 1, correlation: 25 }, leaseMs: 1000 }),
        'params.correlation',
        () => /^unknown key; expected percent$/,
      ],
      [
        'no params',
        () => ({ kind: injector.percentKind, leaseMs: 1000 }),
        'params',
        () => /^expected an object$/,
      ],
      [
        'a parameter as a string',
        () => ({ kind: injector.delayKind, params: { delayMs: '300ms' }, leaseMs: 1000 }),
        'params.delayMs',
        () => /got "300ms"$/,
      ],
      ['a body that is not JSON', () => '{"kind": ', 'body', () => /^not valid JSON/],
      ['a JSON array', () => [1, 2], 'body', () => /^expected a JSON object/],
    ];
    it.each(badBodies)('%s', async (_what, body, field, problem) => {
      await put('keep', percentFault(1, 5000));
      const before = await listed();
      await expectInvalid(await admin('PUT', '/faults/x', body()), field, problem());
      expect(await listed()).toEqual(before);
    });
  });

  describe('holds leases and parameters to FAULT_BOUNDS', () => {
    const { leaseMs, percent, delayMs, jitterMs } = FAULT_BOUNDS;

    it('accepts the bounds themselves', async () => {
      expect((await put('short', percentFault(percent.min, leaseMs.min))).status).toBe(201);
      expect((await put('long', percentFault(percent.max, leaseMs.max))).status).toBe(201);
      const delay = {
        kind: injector.delayKind,
        params: { delayMs: delayMs.max, jitterMs: jitterMs.max },
        leaseMs: 1000,
      };
      expect((await put('slow', delay)).status).toBe(201);
    });

    const outside: [string, () => unknown, string, RegExp][] = [
      [
        'a lease below the shortest',
        () => percentFault(1, leaseMs.min - 1),
        'leaseMs',
        new RegExp(`^expected an integer from ${leaseMs.min} to ${leaseMs.max}, got ${leaseMs.min - 1}$`),
      ],
      ['a lease above the longest', () => percentFault(1, leaseMs.max + 1), 'leaseMs', /got 3600001$/],
      ['a fractional lease', () => percentFault(1, 1000.5), 'leaseMs', /got 1000.5$/],
      ['no lease', () => ({ kind: injector.percentKind, params: { percent: 1 } }), 'leaseMs', /got nothing$/],
      [
        'a percent above the highest',
        () => percentFault(percent.max + 1),
        'params.percent',
        new RegExp(`^expected a number from ${percent.min} to ${percent.max}, got ${percent.max + 1}$`),
      ],
      ['a negative percent', () => percentFault(-1), 'params.percent', /got -1$/],
      [
        'a delay above the longest',
        () => ({ kind: injector.delayKind, params: { delayMs: delayMs.max + 1 }, leaseMs: 1000 }),
        'params.delayMs',
        new RegExp(`^expected an integer from ${delayMs.min} to ${delayMs.max}, got ${delayMs.max + 1}$`),
      ],
      [
        'a fractional jitter',
        () => ({ kind: injector.delayKind, params: { delayMs: 5, jitterMs: 0.5 }, leaseMs: 1000 }),
        'params.jitterMs',
        new RegExp(`^expected an integer from ${jitterMs.min} to ${jitterMs.max}, got 0.5$`),
      ],
    ];
    it.each(outside)('refuses %s', async (_what, body, field, problem) => {
      await expectInvalid(await admin('PUT', '/faults/x', body()), field, problem);
      expect(await listed()).toEqual([]);
    });
  });

  describe('holds at most maxFaults in force', () => {
    async function fill(): Promise<Lease[]> {
      for (let i = 0; i < injector.maxFaults; i++) {
        expect((await put(`f${i}`, percentFault(1, 5000))).status).toBe(201);
      }
      const full = await listed();
      expect(full).toHaveLength(injector.maxFaults);
      return full;
    }

    it('refuses one more with 409 TOO_MANY_FAULTS saying how many are in force and the limit, and applies nothing', async () => {
      const before = await fill();
      const res = await admin('PUT', '/faults/one-more', percentFault(1, 5000));
      expect(res.status).toBe(409);
      const body = (await res.json()) as ErrorBody;
      expect(body.error).toEqual({
        status: 409,
        reason: 'TOO_MANY_FAULTS',
        message: `too many faults: ${injector.maxFaults} in force on this ${injector.where}, which takes at most ${injector.maxFaults}; remove one first (DELETE /__chaos/faults/:id), or renew one in force (PUT with its id)`,
        metadata: { inForce: String(injector.maxFaults), limit: String(injector.maxFaults) },
      });
      expect(body.requestId).toEqual(expect.any(String));
      expect(await listed()).toEqual(before);
    });

    it('renews a fault in force at the limit, and takes a new one once another is removed or has run out', async () => {
      await fill();
      now += 1000;
      const renewed = await put('f0', percentFault(7, 8000));
      expect(renewed).toMatchObject({
        status: 200,
        fault: { params: { percent: 7 }, expiresAt: now + 8000 },
      });
      expect(await listed()).toHaveLength(injector.maxFaults);

      await admin('DELETE', '/faults/f1');
      expect((await put('after-remove', percentFault(1, 8000))).status).toBe(201);
      expect((await admin('PUT', '/faults/refused', percentFault(1))).status).toBe(409);
      // The rest were leased for 5 s from T0; f0 and the new one run on.
      now = T0 + 5000;
      expect((await put('after-expiry', percentFault(1))).status).toBe(201);
      expect((await listed()).map((f) => f.id)).toEqual(['f0', 'after-remove', 'after-expiry']);
    });
  });

  describe('guards every route with the bearer token', () => {
    const routes: [string, string, unknown][] = [
      ['GET', '/faults', undefined],
      ['PUT', '/faults/keep', percentFault(100)],
      ['DELETE', '/faults/keep', undefined],
      ['DELETE', '/faults', undefined],
    ];

    it.each(routes)('%s %s: 401 without a token or with a wrong one', async (method, path, body) => {
      await put('keep', percentFault(1, 5000));
      const before = await listed();
      for (const token of [null, '', 'wrong', `${TOKEN}x`]) {
        const res = await admin(method, path, body, token);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="chaos"');
        expect(((await res.json()) as ErrorBody).error.reason).toBe('UNAUTHORIZED');
      }
      expect(await listed()).toEqual(before);
    });

    it('takes the scheme in any case', async () => {
      const res = await fetch(`${running.url}/faults`, { headers: { authorization: `bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
    });

    it('is off, 404 CHAOS_ADMIN_DISABLED on every route, when started without a token', async () => {
      const off = await injector.start(undefined, () => now);
      try {
        for (const [method, path, body] of routes) {
          const res = await fetch(`${off.url}${path}`, {
            method,
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
          expect(res.status).toBe(404);
          expect(((await res.json()) as ErrorBody).error.reason).toBe('CHAOS_ADMIN_DISABLED');
        }
      } finally {
        await off.close();
      }
    });
  });
});
