/**
 * Entry point of the local lab's one process of every fault proxy: `node --import tsx
 * services/fault-proxy/host-main.ts`, configured by FAULT_PROXIES (a JSON array of `{id,
 * listenHost?, listenPort, adminPort, upstream}`), CHAOS_ADMIN_TOKEN and LOG_LEVEL. A bad value
 * stops the process at once (exit 2) with a message naming the variable and the entry; a proxy
 * that cannot listen stops it too (exit 1), all of its proxies with it.
 */

import { runProcess } from '../lib/process-lifetime.ts';
import { faultProxiesFromEnv, startFaultProxyHost } from './host.ts';

await runProcess('fault-proxies', () => startFaultProxyHost(faultProxiesFromEnv(process.env)));
