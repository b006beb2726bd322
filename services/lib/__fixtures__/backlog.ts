import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The accept backlog of the TCP listener on `port`, as the kernel holds it (`ss`: a listening
 * socket's Send-Q), and the most the kernel grants (net.core.somaxconn). `undefined` when `ss`
 * is not installed (iproute2), so a test can say it skips; CI installs it (.ci/run).
 */
export function listenBacklog(
  port: number,
): { readonly backlog: number; readonly somaxconn: number } | undefined {
  const ss = spawnSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  if (ss.error || ss.status !== 0) return undefined;
  const fields = ss.stdout.trim().split(/\s+/);
  if (fields[0] !== 'LISTEN')
    throw new Error(`no TCP listener on port ${port}: ss said ${JSON.stringify(ss.stdout)}`);
  return {
    backlog: Number(fields[2]),
    somaxconn: Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')),
  };
}

/** Why a backlog test cannot run here; undefined when it can (in CI a missing `ss` is a failure). */
export function backlogSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the accept backlog is read from Linux (ss, /proc)';
  if (spawnSync('ss', ['-V']).status === 0 || process.env.CI) return undefined;
  return 'ss is not installed (apt-get install iproute2)';
}
