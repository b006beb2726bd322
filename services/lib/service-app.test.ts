import { afterEach, describe, expect, it } from 'vitest';
import { captureLog } from './__fixtures__/observe.ts';
import { errors } from './errors.ts';
import { createServiceApp, type Listening, listen } from './service-app.ts';

const open: Listening[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

/** A real service app on loopback with one route that answers and one that fails. */
async function serve(level: string) {
  const captured = captureLog(level);
  const { app, finalize } = createServiceApp({
    service: 'coin',
    instanceId: 'coin-test',
    log: captured.log,
    processMetrics: false,
  });
  app.get('/ok', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/busy', (_req, res) => {
    res.status(503).json({ error: 'shed' });
  });
  app.get('/boom', () => {
    throw errors.unavailable('BROKEN', 'it broke');
  });
  finalize();
  const listening = await listen(app, 0);
  open.push(listening);
  const call = async (path: string, id: string) => {
    const res = await fetch(`${listening.url}${path}`, { headers: { 'x-request-id': id } });
    await res.arrayBuffer();
    return res.status;
  };
  const levelsOf = (id: string) =>
    captured
      .lines()
      .filter((l) => l.reqId === id)
      .map((l) => l.level);
  return { call, levelsOf };
}

describe('request log lines', () => {
  it('at info: a served call writes nothing; a refusal, an answered 5xx and an error each a line with its request id', async () => {
    const { call, levelsOf } = await serve('info');
    expect(await call('/ok', 'r-ok')).toBe(200);
    expect(await call('/nope', 'r-404')).toBe(404);
    expect(await call('/busy', 'r-503')).toBe(503);
    expect(await call('/boom', 'r-err')).toBe(503);
    expect(levelsOf('r-ok')).toEqual([]);
    expect(levelsOf('r-404')).toEqual([30]);
    expect(levelsOf('r-503')).toEqual([40]);
    expect(levelsOf('r-err')).toEqual([50]);
  });

  it('at debug: a served call writes its line too', async () => {
    const { call, levelsOf } = await serve('debug');
    expect(await call('/ok', 'r-ok')).toBe(200);
    expect(levelsOf('r-ok')).toEqual([20]);
  });
});
