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
