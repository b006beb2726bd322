import { describe, expect, it } from 'vitest';
import { recordedEvents } from './__fixtures__/calls.ts';
import { bulkhead } from './bulkhead.ts';

/** Calls that stay in flight until the test lets them finish. */
function heldCalls() {
  const release = new Map<string, () => void>();
  const handler = (name: string) =>
    new Promise<string>((resolve) => {
      release.set(name, () => resolve(`done ${name}`));
    });
  return { handler, finish: (name: string) => release.get(name)?.() };
}

describe('bulkhead', () => {
  it('runs up to its limit at once and turns the next call away at once, without queueing it', async () => {
    const { events, seen } = recordedEvents();
    const { handler, finish } = heldCalls();
    const handle = bulkhead({ limit: 2, events, rejected: (name: string) => `rejected ${name}` })(handler);
    const a = handle('a');
    const b = handle('b');
    expect(await handle('c')).toBe('rejected c');
    expect(seen).toEqual([{ type: 'bulkhead-rejected', limit: 2 }]);
    finish('a');
    finish('b');
    expect([await a, await b]).toEqual(['done a', 'done b']);
  });

  it('frees a place when a call ends, whether it answers or throws', async () => {
    const { events } = recordedEvents();
    let calls = 0;
    const handle = bulkhead({ limit: 1, events, rejected: () => 'rejected' })(async () => {
      calls += 1;
      if (calls === 1) throw new Error('boom');
      return 'answered';
    });
    await expect(handle(undefined)).rejects.toThrow('boom');
    expect(await handle(undefined)).toBe('answered');
    expect(await handle(undefined)).toBe('answered');
  });

  it('is one limit for every handler it wraps', async () => {
    const { events } = recordedEvents();
    const { handler, finish } = heldCalls();
    const limit = bulkhead<string, string>({ limit: 1, events, rejected: () => 'rejected' });
    const first = limit(handler)('a');
    expect(await limit(handler)('b')).toBe('rejected');
    finish('a');
    await first;
  });

  it.each([0, 1.5])('refuses a limit of %d', (limit) => {
    const { events } = recordedEvents();
    expect(() => bulkhead({ limit, events, rejected: () => 'rejected' })).toThrow(/at least 1/);
  });
});
