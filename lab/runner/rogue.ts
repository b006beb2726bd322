import type { RogueAnswer } from './target.ts';

/**
 * One rogue call: a plain, unsigned GET of `url`, as a client that got onto the network would send
 * it. The answer's status and error reason (TRUST_MISSING…), or no answer and why (ECONNREFUSED…).
 */
export async function rogueGet(
  url: string | (() => Promise<string>),
  signal: AbortSignal,
): Promise<RogueAnswer> {
  try {
    const res = await fetch(typeof url === 'string' ? url : await url(), { signal });
    const body = (await res.json().catch(() => undefined)) as { error?: { reason?: unknown } } | undefined;
    const reason = body?.error?.reason;
    return { status: res.status, ...(typeof reason === 'string' ? { reason } : {}) };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return { status: null, reason: cause?.code ?? (err as Error).name };
  }
}

/** Round-robin over a service's instances, one turn per rogue call. */
export class RogueTurns {
  readonly #turns = new Map<string, number>();

  next<T>(service: string, instances: readonly T[]): T | undefined {
    const turn = this.#turns.get(service) ?? 0;
    this.#turns.set(service, turn + 1);
    return instances[turn % Math.max(1, instances.length)];
  }
}
