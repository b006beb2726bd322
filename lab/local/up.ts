/**
 * `chaos-lab up` on the local lab: in the foreground (Ctrl-C stops it) or detached, then a
 * summary of where everything answers.
 */
import { fetchLabStatus } from '../admin-client.ts';
import { formatDuration } from '../duration.ts';
import { type Io, say, warn } from '../io.ts';
import { upDetached } from './detach.ts';
import { progressLine, startLab, type UpOptions } from './lab.ts';
import type { LabState } from './state.ts';

const SAMPLE_AID = 42;

function summary(
  io: Io,
  state: LabState,
  readyInMs: number,
  detached: boolean,
  liveUrl: string | null,
): void {
  say(
    io,
    `chaos-lab is up: ${state.instances.length} instances ready in ${formatDuration(readyInMs)} (trust ${state.trust.mode}, worker recovery ${state.workerRecovery ? 'on' : 'off'})`,
  );
  say(io, 'gateways');
  const width = Math.max(...Object.keys(state.gateways).map((s) => s.length));
  for (const [strategy, url] of Object.entries(state.gateways))
    say(io, `  ${strategy.padEnd(width)}  ${url}`);
  const resilient = state.gateways.resilient ?? Object.values(state.gateways)[0];
  if (liveUrl) say(io, `live: ${liveUrl}`);
  say(io, `try: curl -s ${resilient}/api/video/${SAMPLE_AID}`);
  say(io, `status: npx chaos-lab status · faults: npx chaos-lab fault --help · logs: ${state.logDir}`);
  say(
    io,
    detached ? `supervisor pid ${state.pid}; stop it with: npx chaos-lab down` : 'Ctrl-C stops the lab',
  );
}

/** Where the background supervisor serves the page: it says, since a page that could not be served has none. */
async function liveUrlOf(state: LabState): Promise<string | null> {
  try {
    return (await fetchLabStatus(state)).liveUrl ?? null;
  } catch {
    return null;
  }
}

/** `up --detach`: starts the lab in the background and returns once it is ready. */
export async function upDetachedCommand(io: Io, options: UpOptions): Promise<number> {
  const { state, readyInMs } = await upDetached(options, {
    note: (message) => warn(io, message),
    progress: (ready, total, waitingFor) => say(io, progressLine(ready, total, waitingFor)),
  });
  summary(io, state, readyInMs, true, options.live ? await liveUrlOf(state) : null);
  return 0;
}

/** `up`: runs the lab in this process until SIGINT/SIGTERM (or `chaos-lab down`). */
export async function upForegroundCommand(io: Io, options: UpOptions): Promise<number> {
  const abort = new AbortController();
  let stop: (() => Promise<void>) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop) {
      say(io, `${signal}: stopping every instance…`);
      void stop();
    } else {
      abort.abort();
    }
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  try {
    const lab = await startLab(options, {
      signal: abort.signal,
      note: (message) => warn(io, message),
      progress: (ready, total, waitingFor) => say(io, progressLine(ready, total, waitingFor)),
      log: (line) => say(io, `${new Date().toISOString().slice(11, 23)} ${line}`),
    });
    stop = lab.stop;
    summary(io, lab.state, lab.readyInMs, false, lab.liveUrl);
    await lab.stopped;
    say(io, 'stopped: every instance is gone');
    return 0;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}
