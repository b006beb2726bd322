import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CapturedLog, captureLog, metricValue, untilTrue } from '../lib/__fixtures__/observe.ts';
import { BACKENDS, type BackendName, DATASET } from '../topology.ts';
import { COUNTER_GROWTH } from './counter.ts';
import { findAccount, findVideo, findVip } from './dataset.ts';
import { type RunningBackend, startBackend } from './server.ts';

/** One route of each backend, its id parameter, and what a 404 is called there. */
const ROUTES: Record<BackendName, { path: string; param: 'mid' | 'aid'; notFound: string; task: string }> = {
  account: { path: '/accounts', param: 'mid', notFound: 'ACCOUNT_NOT_FOUND', task: 'touch-last-seen' },
  archive: { path: '/archives', param: 'aid', notFound: 'VIDEO_NOT_FOUND', task: 'record-view' },
  vip: { path: '/vips', param: 'mid', notFound: 'ACCOUNT_NOT_FOUND', task: 'audit-access' },
  like: { path: '/likes', param: 'aid', notFound: 'VIDEO_NOT_FOUND', task: 'refresh-counter' },
  coin: { path: '/coins', param: 'aid', notFound: 'VIDEO_NOT_FOUND', task: 'refresh-counter' },
};

const running = {} as Record<BackendName, RunningBackend & { captured: CapturedLog }>;
// Counters grow only when the dice say so: always, here, so a test can see each refresh.
const random = () => COUNTER_GROWTH / 2;

beforeAll(async () => {
  await Promise.all(
    BACKENDS.map(async (name) => {
      const captured = captureLog();
      const backend = await startBackend(
        {
          name,
          instanceId: `${name}-test`,
          port: 0,
          host: '127.0.0.1',
          adminToken: 'tok',
          trustMode: 'zero',
          workerRecovery: true,
        },
        { log: captured.log, random },
      );
      running[name] = Object.assign(backend, { captured });
    }),
  );
});

afterAll(async () => {
  await Promise.all(Object.values(running).map((b) => b.close()));
});

async function getJson(name: BackendName, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${running[name].url}${path}`, { headers });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

function settled(name: BackendName): Promise<void> {
  return untilTrue(() => running[name].launcher.inFlight() === 0, `${name}'s background tasks`);
}

describe('backend endpoints', () => {
  it('account answers an account', async () => {
    const { res, body } = await getJson('account', '/accounts/1');
    expect(res.status).toBe(200);
    expect(body).toEqual(findAccount(1));
    expect(Object.keys(body).sort()).toEqual(['face', 'level', 'mid', 'name', 'sign']);
  });

  it('archive answers a video without the other services’ counters', async () => {
    const { res, body } = await getJson('archive', '/archives/2');
    expect(res.status).toBe(200);
    const { likes: _likes, coins: _coins, ...video } = findVideo(2)!;
    expect(body).toEqual({ ...video, views: expect.any(Number) });
    expect(Object.keys(body).sort()).toEqual(
      [
        'aid',
        'bvid',
        'category',
        'cover',
        'description',
        'duration',
        'ownerMid',
        'pubdate',
        'title',
        'views',
      ].sort(),
    );
  });

  it('vip answers a membership', async () => {
    const { res, body } = await getJson('vip', '/vips/2');
    expect(res.status).toBe(200);
    expect(body).toEqual(findVip(2));
  });

  it('like and coin answer counts that start from the seeded values', async () => {
    const like = await getJson('like', '/likes/3');
    expect(like.res.status).toBe(200);
    expect(like.body).toEqual({ aid: 3, likes: findVideo(3)!.likes });
    const coin = await getJson('coin', '/coins/3');
    expect(coin.body).toEqual({ aid: 3, coins: findVideo(3)!.coins });
  });

  it.each(BACKENDS)('%s answers 400 INVALID_ID to an id that is not a positive integer', async (name) => {
    const { path, param } = ROUTES[name];
    for (const id of ['abc', '0', '-1', '1.5', '1e3', '99999999999999999999', '%20']) {
      const { res, body } = await getJson(name, `${path}/${id}`);
      expect(res.status, `${path}/${id}`).toBe(400);
      expect(body.error).toMatchObject({ status: 400, reason: 'INVALID_ID', metadata: { field: param } });
      expect((body.error as { message: string }).message).toMatch(
        new RegExp(`^${param} must be a positive integer`),
      );
    }
  });

  it.each(BACKENDS)('%s answers 404 to an unknown id', async (name) => {
    const { path, notFound } = ROUTES[name];
    const id = ROUTES[name].param === 'aid' ? DATASET.videos + 1 : DATASET.accounts + 1;
    const { res, body } = await getJson(name, `${path}/${id}`);
    expect(res.status).toBe(404);
    expect(body.error).toMatchObject({ status: 404, reason: notFound });
  });

  it.each(BACKENDS)(
    '%s echoes x-request-id, logs a refusal with it, and a served call only at debug',
    async (name) => {
      const requestId = `req-${name}-42`;
      const { res, body } = await getJson(name, `${ROUTES[name].path}/5`, { 'x-request-id': requestId });
      expect(res.headers.get('x-request-id')).toBe(requestId);
      expect(body).not.toHaveProperty('error');
      // The test logger is at info: a call that went well writes no line there.
      expect(running[name].captured.lines().filter((l) => l.reqId === requestId)).toEqual([]);

      const failed = await getJson(name, `${ROUTES[name].path}/nope`, { 'x-request-id': `${requestId}-bad` });
      expect(failed.body.requestId).toBe(`${requestId}-bad`);
      expect(running[name].captured.lines().find((l) => l.reqId === `${requestId}-bad`)).toMatchObject({
        level: 30,
        service: name,
        instance: `${name}-test`,
        msg: 'request completed',
      });
    },
  );

  it.each(BACKENDS)('%s makes up a request id when none is sent', async (name) => {
    const { res } = await getJson(name, `${ROUTES[name].path}/1`);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each(BACKENDS)('%s launches exactly one background task per request', async (name) => {
    const { path, task } = ROUTES[name];
    await settled(name);
    const count = () => metricValue(running[name].ctx.metrics, 'worker_tasks_total', { task });
    const before = await count();
    for (const id of [1, 2, 3]) await fetch(`${running[name].url}${path}/${id}`);
    await settled(name);
    expect(await count()).toBe(before + 3);
  });

  it('archive counts views in the background, per instance', async () => {
    const views = async () => (await getJson('archive', '/archives/9')).body.views as number;
    await settled('archive');
    const first = await views();
    await settled('archive');
    const second = await views();
    await settled('archive');
    expect(second).toBe(first + 1);
    expect(await views()).toBe(first + 2);
  });

  it('like and coin refresh their counters in the background', async () => {
    for (const [name, path, field] of [
      ['like', '/likes/11', 'likes'],
      ['coin', '/coins/11', 'coins'],
    ] as const) {
      const first = (await getJson(name, path)).body[field] as number;
      await settled(name);
      expect((await getJson(name, path)).body[field]).toBe(first + 1);
    }
  });

  it('answers 404 ROUTE_NOT_FOUND off its routes', async () => {
    const { res, body } = await getJson('coin', '/likes/1');
    expect(res.status).toBe(404);
    expect(body.error).toMatchObject({ reason: 'ROUTE_NOT_FOUND' });
  });
});

describe('backend platform endpoints', () => {
  it.each(BACKENDS)('%s has /healthz, /readyz and /metrics', async (name) => {
    const health = await getJson(name, '/healthz');
    expect(health.res.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok', service: name, instance: `${name}-test` });
    const ready = await getJson(name, '/readyz');
    expect(ready.res.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true });

    await fetch(`${running[name].url}${ROUTES[name].path}/1`);
    const metrics = await (await fetch(`${running[name].url}/metrics`)).text();
    expect(metrics).toContain('http_server_request_duration_seconds_bucket');
    // Default labels (service, instance) come first, so look for the labels one by one.
    const count = metrics
      .split('\n')
      .find(
        (line) =>
          line.startsWith('http_server_request_duration_seconds_count{') &&
          line.includes(`route="${ROUTES[name].path}/:${ROUTES[name].param}"`) &&
          line.includes('status="200"'),
      );
    expect(count).toMatch(/ [1-9]\d*$/);
    expect(metrics).toContain('process_cpu_seconds_total');
    expect(metrics).toContain('chaos_faults_active');
    expect(metrics).toContain('worker_tasks_total');
  });

  it('is not ready once closed', async () => {
    const captured = captureLog();
    const backend = await startBackend(
      {
        name: 'vip',
        instanceId: 'vip-x',
        port: 0,
        host: '127.0.0.1',
        trustMode: 'zero',
        workerRecovery: true,
      },
      { log: captured.log },
    );
    expect(backend.ctx.readiness.get()).toBe(true);
    expect(captured.lines().some((l) => l.msg === 'vip backend listening' && l.url === backend.url)).toBe(
      true,
    );
    await backend.close();
    expect(backend.ctx.readiness.get()).toBe(false);
    await expect(fetch(`${backend.url}/healthz`)).rejects.toThrow();
  });

  it('refuses to start on a port in use', async () => {
    const captured = captureLog();
    const config = {
      name: 'like' as const,
      instanceId: 'like-x',
      port: running.like.port,
      host: '127.0.0.1',
      trustMode: 'zero' as const,
      workerRecovery: true,
    };
    await expect(startBackend(config, { log: captured.log })).rejects.toThrow(/EADDRINUSE/);
  });
});
