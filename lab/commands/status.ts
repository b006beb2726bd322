import { callJson } from '../admin-client.ts';
import { CliError } from '../cli-error.ts';
import type { LabStatus } from '../control-server.ts';
import { requireLab } from '../find-lab.ts';
import { type Io, say, table } from '../io.ts';
import type { LabState } from '../state.ts';

/** The live status from the supervisor's control API. */
export async function fetchStatus(state: LabState): Promise<LabStatus> {
  try {
    return await callJson<LabStatus>(
      { id: 'supervisor', url: state.controlUrl },
      state.adminToken,
      'GET',
      '/status',
    );
  } catch (err) {
    throw new CliError(`the lab's supervisor (pid ${state.pid}) does not answer: ${(err as Error).message}`, {
      hint: 'it may be starting or stopping; if it stays so, stop it with: npx chaos-lab down',
    });
  }
}

export async function statusCommand(io: Io, home: string, options: { json?: boolean }): Promise<number> {
  const state = requireLab(io, home);
  const status = await fetchStatus(state);
  if (options.json) {
    // Never the admin token or the trust key: this output ends up in terminals and issues.
    const view = {
      pid: status.pid,
      startedAt: status.startedAt,
      controlUrl: state.controlUrl,
      portBase: state.portBase,
      trust: status.trust,
      workerRecovery: status.workerRecovery,
      logDir: state.logDir,
      gateways: status.gateways,
      instances: status.instances,
    };
    say(io, JSON.stringify(view, null, 2));
    return 0;
  }
  const ready = status.instances.filter((i) => i.ready).length;
  say(
    io,
    `lab: supervisor pid ${status.pid}, started ${status.startedAt}, trust ${status.trust}, worker recovery ${status.workerRecovery ? 'on' : 'off'}, ${ready}/${status.instances.length} ready`,
  );
  say(io, 'gateways');
  for (const line of table(Object.entries(status.gateways))) say(io, `  ${line}`);
  say(io, 'instances');
  const rows = status.instances.map((i) => [
    i.id,
    i.url,
    i.pid === null ? '-' : String(i.pid),
    i.ready ? 'yes' : i.state === 'backoff' ? 'no (backing off)' : 'no',
    String(i.restarts),
    i.lastExit ? (i.lastExit.signal ?? `code ${i.lastExit.code}`) : '-',
  ]);
  for (const line of table([['ID', 'URL', 'PID', 'READY', 'RESTARTS', 'LAST EXIT'], ...rows]))
    say(io, `  ${line}`);
  say(io, `control API ${state.controlUrl} · logs ${state.logDir}`);
  return 0;
}
