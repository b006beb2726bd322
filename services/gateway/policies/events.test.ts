import { describe, expect, it } from 'vitest';
import { type PolicyEvent, PolicyEvents } from './events.ts';

const retry: PolicyEvent = { type: 'retry', dependency: 'coin', attempt: 2 };

describe('PolicyEvents', () => {
  it('delivers every event to every listener, in the order they subscribed', () => {
    const events = new PolicyEvents();
    const seen: string[] = [];
    events.subscribe((e) => seen.push(`first ${e.type}`));
    events.subscribe((e) => seen.push(`second ${e.type}`));
    events.emit(retry);
    expect(seen).toEqual(['first retry', 'second retry']);
  });

  it('stops delivering to a listener that unsubscribed, even one that does it while being called', () => {
    const events = new PolicyEvents();
    const seen: string[] = [];
    const stopOnce = events.subscribe(() => {
      seen.push('once');
      stopOnce();
    });
    events.subscribe(() => seen.push('always'));
    events.emit(retry);
    events.emit(retry);
    expect(seen).toEqual(['once', 'always', 'always']);
  });
});
