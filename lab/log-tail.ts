import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** The last `lines` lines of a log file (reading at most its last 16 KiB); [] if it is missing. */
export function tailLines(file: string, lines = 12): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 16 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const text = buffer.toString('utf8').replace(/\n+$/, '');
    return text === '' ? [] : text.split('\n').slice(-lines);
  } finally {
    closeSync(fd);
  }
}
