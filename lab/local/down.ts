import { callJson } from '../admin-client.ts';
import { CliError } from '../cli-error.ts';
import { formatDuration } from '../duration.ts';
import { type Io, say, warn } from '../io.ts';
import { findLab } from './find-lab.ts';
import { STOP_WAIT_MS } from './spawn-supervisor.ts';
import { removeState, waitPidsGone } from './state.ts';

const KILL_WAIT_MS = 3_000;

/**
 * Stops a running lab (detached or not) and waits until its supervisor and every instance
 * are gone. No lab running is not an error: there is nothing to stop, exit 0.
 */
export async function downCommand(io: Io, home: string): Promise<number> {
  const found = findLab(home);
  if (found.kind === 'none') {
    say(io, 'no lab is running; nothing to stop');
    return 0;
  }
  if (found.kind === 'stale') {
    removeState(home);
    say(
      io,
      `no lab is running; removed a stale state file (its supervisor, pid ${found.state.pid}, is gone)`,
    );
    return 0;
  }
  const { state } = found;
  const began = Date.now();
  const control = { id: 'supervisor', url: state.controlUrl };
  let instancePids: number[] = [];
  let proxyPids: number[] = [];
  let proxiesRunning = 0;
  try {
    const status = await callJson<{
      instances: { pid: number | null }[];
      proxies?: { pid: number | null }[];
    }>(control, state.adminToken, 'GET', '/status');
    const pidsOf = (list: readonly { pid: number | null }[]) =>
      list.flatMap((i) => (i.pid === null ? [] : [i.pid]));
    instancePids = pidsOf(status.instances);
    const proxyRows = pidsOf(status.proxies ?? []);
    proxiesRunning = proxyRows.length;
    // The proxies share one process (older labs ran one each).
    proxyPids = [...new Set(proxyRows)];
  } catch {
    // Without the list, the supervisor's exit still means its children are gone: it waits for them.
  }
  try {
    await callJson(control, state.adminToken, 'POST', '/shutdown');
  } catch (err) {
    warn(
      io,
      `the control API did not take the shutdown (${(err as Error).message}); sending SIGTERM to pid ${state.pid}`,
    );
    try {
      process.kill(state.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const pids = [state.pid, ...instancePids, ...proxyPids];
  let alive = await waitPidsGone(pids, STOP_WAIT_MS);
  if (alive.length > 0) {
    warn(io, `still running after ${formatDuration(STOP_WAIT_MS)}: pid ${alive.join(', ')}; sending SIGKILL`);
    for (const pid of alive) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone in the meantime
      }
    }
    alive = await waitPidsGone(alive, KILL_WAIT_MS);
  }
  removeState(home, state.pid);
  if (alive.length > 0) {
    throw new CliError(`could not stop pid ${alive.join(', ')}`, { hint: 'check them with: ps -p <pid>' });
  }
  const proxies = proxiesRunning > 0 ? ` with their ${proxiesRunning} fault proxies` : '';
  say(
    io,
    `stopped the lab: supervisor (pid ${state.pid}) and ${instancePids.length} instances are gone${proxies} (${formatDuration(Date.now() - began)})`,
  );
  return 0;
}
