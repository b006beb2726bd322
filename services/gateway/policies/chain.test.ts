import { describe, expect, it } from 'vitest';
import { chain, type Handler, type Policy } from './chain.ts';

/** A call that remembers the way it came: each policy adds its name on the way in. */
type Traced = { readonly path: readonly string[] };

function tracing(name: string, trace: string[]): Policy<Traced, string> {
  return (next) => async (call) => {
    trace.push(`${name} in`);
    const answer = await next({ path: [...call.path, name] });
    trace.push(`${name} out`);
    return `${name}(${answer})`;
  };
}

const handler: Handler<Traced, string> = async (call) => call.path.join('>');

describe('chain', () => {
  it('applies policies outermost first, and unwinds innermost first', async () => {
    const trace: string[] = [];
    const handle = chain(
      tracing('cache', trace),
      tracing('breaker', trace),
      tracing('retry', trace),
    )(handler);
    expect(await handle({ path: [] })).toBe('cache(breaker(retry(cache>breaker>retry)))');
    expect(trace).toEqual(['cache in', 'breaker in', 'retry in', 'retry out', 'breaker out', 'cache out']);
  });

  it('lets a policy answer without calling what it wraps', async () => {
    const trace: string[] = [];
    const refuse: Policy<Traced, string> = () => async () => 'refused';
    const handle = chain(tracing('outer', trace), refuse, tracing('inner', trace))(handler);
    expect(await handle({ path: [] })).toBe('outer(refused)');
    expect(trace).toEqual(['outer in', 'outer out']);
  });

  it('is the handler itself when there is no policy', async () => {
    expect(await chain<Traced, string>()(handler)({ path: ['a', 'b'] })).toBe('a>b');
  });
});
