import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cpuShareOver, processCpuSeconds, runQueueSeconds, shareOfCore } from './lab-figures.ts';

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

describe('shareOfCore', () => {
  it('keeps hundredths of a percent, so 3.4% of a core is not reported as 3% (the idle target)', () => {
    expect(shareOfCore(0.68, 20)).toBe(0.034);
    expect(shareOfCore(0.5, 20)).toBe(0.025);
    expect(shareOfCore(0.123456, 1)).toBe(0.1235);
    expect(shareOfCore(0, 20)).toBe(0);
  });
});

describe.runIf(process.platform === 'linux')('cpuShareOver', () => {
  it('measures the share of a core a process tree used over a window', async () => {
    // A parent that idles and a child that burns 500 ms of wall time in the 1 s window, then idles
    // (still alive, so its CPU time is still its own): the tree's share, most of it the child's.
    const child = `const end = Date.now() + 500; while (Date.now() < end); setTimeout(() => {}, 3_000);`;
    const script = `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(child)}], { stdio: 'ignore' }); process.on('SIGTERM', () => { c.kill(); process.exit(); }); setTimeout(() => {}, 3_000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    try {
      const share = await cpuShareOver(parent.pid as number, 1);
      // The parent alone uses well under a tenth of a core here; a busy loop cannot use more than one.
      expect(share).toBeGreaterThan(0.2);
      expect(share).toBeLessThan(1.05);
    } finally {
      parent.kill(); // and the parent stops its child
    }
  });
});
