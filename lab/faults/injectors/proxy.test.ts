import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  echoServer,
  type Harness,
  readBytes,
  startHarness,
  TOKEN,
  type Upstream,
} from '../../../services/fault-proxy/__fixtures__/harness.ts';
import type { AppliedFault } from '../injector.ts';
import type { Fault } from '../registry.ts';
import { createProxyInjector } from './proxy.ts';

/** The lab's proxy injector against a real fault proxy in front of a real echo server. */
describe('the proxy injector', () => {
  const DELAY_MS = 60;
  let echo: Upstream;
  let h: Harness;
  beforeAll(async () => {
    echo = await echoServer();
    h = await startHarness(echo.port);
  });
  afterAll(async () => {
    await h.close();
    await echo.close();
  });

  function applied(id: string, requestShare: number): AppliedFault[] {
    const fault: Fault = {
      kind: 'latency',
      service: 'coin',
      instances: ['coin-1'],
      delayMs: DELAY_MS,
      jitterMs: 0,
      requestShare,
    };
    return [{ fault, instance: 'coin-1', injector: 'fault-proxy', id, injectedAt: new Date().toISOString() }];
  }

  const injector = createProxyInjector({
    token: () => TOKEN,
    proxies: async () => [{ instance: 'coin-1', admin: { id: 'coin-1', url: h.proxy.adminUrl } }],
  });

  /** `calls` echo round trips on one connection, one at a time: a chunk each way per call. */
  async function calls(count: number): Promise<void> {
    const socket = await h.connect();
    try {
      for (let i = 0; i < count; i++) {
        const reply = readBytes(socket, 4, 5_000);
        socket.write(`c${String(i).padStart(3, '0')}`);
        await reply;
      }
    } finally {
      socket.destroy();
    }
  }

  it.each([
    [1, 'requests'],
    [0, 'responses'],
  ] as const)(
    'applies requestShare %s and observes the delay on %s, 0 on the other way',
    async (share, way) => {
      const faults = applied(`lat-${way}`, share);
      const [outcome] = await injector.apply(faults, 10_000);
      expect(outcome).toEqual({ status: 'fulfilled', value: { created: true } });
      expect(h.proxy.faults().map((f) => f.params)).toEqual([
        { delayMs: DELAY_MS, jitterMs: 0, requestShare: share },
      ]);
      await calls(5);
      await injector.remove(faults);
      const observed = await injector.observe?.(faults);

      const delayed = way === 'requests' ? 'requestLatencyMs' : 'responseLatencyMs';
      const spared = way === 'requests' ? 'responseLatencyMs' : 'requestLatencyMs';
      // Every delayed chunk was held at least the delay; the other way's were let through at once
      // (within the proxy clock's millisecond).
      expect(observed?.[delayed]).toBeGreaterThanOrEqual(DELAY_MS);
      expect(observed?.[spared]).toBeLessThanOrEqual(1);
      expect(observed?.addedLatencyMs).toBeCloseTo((observed?.[delayed] ?? 0) + (observed?.[spared] ?? 0), 1);
      expect(observed?.samples).toBeGreaterThanOrEqual(10);
    },
  );
});
