import { fetchLabStatus } from '../admin-client.ts';
import { CliError } from '../cli-error.ts';
import { type Io, say, table } from '../io.ts';
import type { LabStatus } from './control-server.ts';
import { requireLab } from './find-lab.ts';
import type { LabState } from './state.ts';
import type { InstanceStatus } from './supervisor.ts';

/** The live status from the supervisor's control API, as a CLI error with a hint when it does not answer. */
export async function fetchStatus(state: LabState): Promise<LabStatus> {
  try {
    return await fetchLabStatus(state);
  } catch (err) {
    throw new CliError((err as Error).message, {
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
      liveUrl: status.liveUrl ?? null,
      portBase: state.portBase,
      trust: status.trust,
      workerRecovery: status.workerRecovery,
      logDir: state.logDir,
      gateways: status.gateways,
      instances: status.instances,
      proxies: status.proxies ?? [],
    };
    say(io, JSON.stringify(view, null, 2));
    return 0;
  }
  // A lab started before the fault proxies existed has none.
  const proxies = status.proxies ?? [];
  const ready = status.instances.filter((i) => i.ready).length;
  const proxiesReady = proxies.filter((p) => p.ready).length;
  const proxyNote = proxies.length > 0 ? `, fault proxies ${proxiesReady}/${proxies.length} ready` : '';
  say(
    io,
    `lab: supervisor pid ${status.pid}, started ${status.startedAt}, trust ${status.trust}, worker recovery ${status.workerRecovery ? 'on' : 'off'}, ${ready}/${status.instances.length} ready${proxyNote}`,
  );
  say(io, 'gateways');
  for (const line of table(Object.entries(status.gateways))) say(io, `  ${line}`);
  say(io, 'instances');
  const proxyOf = new Map(proxies.map((p) => [p.fronts, p]));
  const readiness = (i: InstanceStatus) =>
    i.ready ? 'yes' : i.state === 'backoff' ? 'no (backing off)' : 'no';
  /** The sidecar in one cell: its data port, whether it is ready, and its restarts if any. */
  const proxyCell = (id: string): string => {
    const p = proxyOf.get(id);
    if (!p) return '-';
    const port = new URL(p.dataUrl).port;
    const restarts = p.restarts > 0 ? `, ${p.restarts} restart${p.restarts === 1 ? '' : 's'}` : '';
    return `:${port} ${readiness(p)}${restarts}`;
  };
  const rows = status.instances.map((i) => [
    i.id,
    i.url,
    i.pid === null ? '-' : String(i.pid),
    readiness(i),
    String(i.restarts),
    i.lastExit ? (i.lastExit.signal ?? `code ${i.lastExit.code}`) : '-',
    proxyCell(i.id),
  ]);
  for (const line of table([['ID', 'URL', 'PID', 'READY', 'RESTARTS', 'LAST EXIT', 'FAULT PROXY'], ...rows]))
    say(io, `  ${line}`);
  say(io, `control API ${state.controlUrl} · logs ${state.logDir}`);
  say(
    io,
    status.liveUrl
      ? `live page ${status.liveUrl}`
      : 'live page: none (the lab was started with --no-live, or by a run for itself)',
  );
  return 0;
}
