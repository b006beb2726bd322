/**
 * Entry point of the supervisor that spawn-supervisor.ts starts: for `chaos-lab up --detach`
 * (detach.ts), it runs the lab in the background until `chaos-lab down` (the control API's
 * /shutdown) or SIGTERM, and reports its start-up to the CLI that started it over the IPC
 * channel. Started by child-lab.ts instead, it also stops the lab when that channel closes:
 * its parent is gone.
 */

import { CliError } from '../cli-error.ts';
import { type RunningLab, startLab, type UpOptions } from './lab.ts';
import { type SupervisorMessage, TIED_ENV, UP_OPTIONS_ENV } from './spawn-supervisor.ts';

function report(message: SupervisorMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

function say(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

async function main(): Promise<number> {
  const options = JSON.parse(process.env[UP_OPTIONS_ENV] ?? 'null') as UpOptions | null;
  // Read once; the instances inherit this environment and have no use for it.
  delete process.env[UP_OPTIONS_ENV];
  if (!options) {
    say(`${UP_OPTIONS_ENV} is not set: this process is started by \`chaos-lab up --detach\``);
    return 2;
  }
  const abort = new AbortController();
  let lab: RunningLab | undefined;
  let ready = false;
  const stopOn = (why: string) => () => {
    say(`${why}: stopping`);
    if (lab) void lab.stop();
    else abort.abort();
  };
  process.on('SIGTERM', stopOn('SIGTERM'));
  process.on('SIGINT', stopOn('SIGINT'));
  process.on('SIGHUP', stopOn('SIGHUP'));
  // Tied to its parent (the experiment runner, child-lab.ts): the lab lives exactly as long
  // as the parent, even one killed with SIGKILL.
  const tied = process.env[TIED_ENV] === '1';
  delete process.env[TIED_ENV];
  // Otherwise, the CLI went away before the lab was ready (Ctrl-C on `up --detach`): nobody
  // will ever learn this lab's address, so it must not stay.
  const onDisconnect = () => {
    if (tied) stopOn('the process this lab is tied to went away')();
    else if (!ready) stopOn('the CLI that started this lab went away')();
  };
  process.on('disconnect', onDisconnect);
  // A parent that let go while this process was still loading closed the channel before anyone
  // listened: the event is gone, the channel says so.
  if (process.send !== undefined && !process.connected) onDisconnect();

  say(
    `supervisor pid ${process.pid}: starting the lab (port base ${options.portBase}, trust ${options.trust})`,
  );
  try {
    lab = await startLab(options, {
      signal: abort.signal,
      note: (message) => {
        say(message);
        void report({ type: 'note', message });
      },
      progress: (readyCount, total, waitingFor) => {
        say(`ready ${readyCount}/${total}`);
        void report({ type: 'progress', ready: readyCount, total, waitingFor: [...waitingFor] });
      },
      log: say,
    });
  } catch (err) {
    const failure =
      err instanceof CliError
        ? { message: err.message, details: [...err.details], ...(err.hint ? { hint: err.hint } : {}) }
        : { message: `the supervisor failed: ${(err as Error).stack ?? String(err)}`, details: [] };
    say(failure.message);
    for (const line of failure.details) say(line);
    await report({ type: 'failed', ...failure });
    return 1;
  }
  ready = true;
  say(
    `ready in ${lab.readyInMs} ms; control API ${lab.state.controlUrl}${lab.liveUrl ? `; live page ${lab.liveUrl}` : ''}`,
  );
  await report({ type: 'ready', readyInMs: lab.readyInMs });
  await lab.stopped;
  say('stopped');
  return 0;
}

process.exit(await main());
