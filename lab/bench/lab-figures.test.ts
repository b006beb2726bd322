import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { processCpuSeconds, runQueueSeconds } from './lab-figures.ts';

describe.runIf(process.platform === 'linux')('what /proc says of a process', () => {
  it("reads a process's CPU time and its main thread's wait for a CPU, and null once it is gone", async () => {
    // Two busy processes on one CPU: each spends part of the time waiting for the other.
    const burn = 'const end = Date.now() + 600; while (Date.now() < end);';
    const args = ['-c', '0', process.execPath, '-e', burn];
    const busy = [spawn('taskset', args), spawn('taskset', args)];
    const pid = busy[0]?.pid as number;
    await new Promise((done) => setTimeout(done, 300));
    const cpu = processCpuSeconds(pid);
    const waited = runQueueSeconds(pid);
    expect(cpu).toBeGreaterThan(0);
    expect(waited).toBeGreaterThan(0);
    await Promise.all(busy.map((child) => new Promise((done) => child.once('exit', done))));
    expect(processCpuSeconds(pid)).toBeNull();
    expect(runQueueSeconds(pid)).toBeNull();
  });
});
