/**
 * A process whose background tasks throw: `panicking-worker.ts on|off [rejections-only]`. With recovery off
 * it must die of the first panic; with recovery on it keeps running, does more work, and
 * prints how many panics it recovered as `RESULT {"recovered":n,"ok":m}` on stdout.
 * Logs go to stderr.
 */
import { pino } from 'pino';
import { createLauncher } from '../go.ts';
import { createServiceApp } from '../service-app.ts';
import { metricValue } from './observe.ts';

const recovery = process.argv[2] === 'on';
const rejectionsOnly = process.argv[3] === 'rejections-only';
const { ctx } = createServiceApp({
  service: 'fixture',
  instanceId: 'fixture-1',
  log: pino({ base: { service: 'fixture' } }, process.stderr),
  processMetrics: false,
});
const launcher = createLauncher({ ctx, recovery: () => recovery });

async function settled(what: string): Promise<void> {
  for (let poll = 0; poll < 400; poll++) {
    if (launcher.inFlight() === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${what} did not finish within 2 s`);
}

for (let i = 0; i < (rejectionsOnly ? 0 : 3); i++) {
  launcher.go('explode', () => {
    throw new Error(`boom from the fixture #${i}`);
  });
}
launcher.go('explode-later', async () => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  throw new Error('rejected boom from the fixture');
});
await settled('the panicking tasks');

// Still alive: real timers fire and new work runs.
await new Promise((resolve) => setTimeout(resolve, 20));
launcher.go('after', () => {});
await settled('the task after the panics');

const recovered = await metricValue(ctx.metrics, 'worker_panics_recovered_total');
const ok = await metricValue(ctx.metrics, 'worker_tasks_total', { outcome: 'ok' });
process.stdout.write(`RESULT ${JSON.stringify({ recovered, ok })}\n`);
