import { type ChildProcess, spawn } from 'node:child_process';

/**
 * A live process that passes for a lab supervisor (its command line names chaos-lab), so a
 * test can write a state file for a "running" lab without starting one.
 */
export async function startStandInSupervisor(): Promise<{ pid: number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', 'setTimeout(() => {}, 120_000)', 'chaos-lab-stand-in'],
    {
      stdio: 'ignore',
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return {
    pid: child.pid ?? 0,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
