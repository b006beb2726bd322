import { createServer } from 'node:net';

/** Whether `port` can be bound on `host` right now (tried for real, then released). */
export function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** The ports of `wanted` that cannot be bound, in the order given. */
export async function busyPorts<T extends { port: number }>(
  wanted: readonly T[],
  host: string,
): Promise<T[]> {
  const free = await Promise.all(wanted.map((w) => portIsFree(w.port, host)));
  return wanted.filter((_, i) => !free[i]);
}

/**
 * A port base in 20000–40000 whose every lab port can be bound right now, for labs started
 * beside another (tests, benchmarks). `portsAt(base)` lists the ports a base would use.
 */
export async function findFreePortBase(
  portsAt: (base: number) => readonly { port: number }[],
  host: string,
): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 10 * Math.floor(Math.random() * 2_000);
    if ((await busyPorts(portsAt(base), host)).length === 0) return base;
  }
  throw new Error('no free port range found in 20000-40000 after 50 tries');
}
