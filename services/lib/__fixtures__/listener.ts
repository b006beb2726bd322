import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * The IPv4 TCP listener on `port` as /proc/net/tcp shows it: the socket's inode (what a
 * descriptor of it links to, `socket:[inode]`) and the connections waiting in its accept queue
 * (a listening socket's rx_queue). Undefined when nothing listens there. Linux only.
 */
export function tcpListener(
  port: number,
): { readonly socket: string; readonly acceptQueue: number } | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state, queues, , , , , inode] = line.trim().split(/\s+/);
    if (local?.endsWith(hex) && state === '0A') {
      return { socket: `socket:[${inode}]`, acceptQueue: Number.parseInt(queues?.split(':')[1] ?? '0', 16) };
    }
  }
  return undefined;
}

/** How many of `pid`'s descriptors link to `target` (`socket:[inode]`). */
export function descriptorsTo(pid: number | 'self', target: string): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
    } catch {
      return false; // closed meanwhile
    }
  }).length;
}
