/**
 * Entry point of one fault proxy: `node --import tsx services/fault-proxy/main.ts`, configured
 * by LISTEN_PORT, LISTEN_HOST, UPSTREAM, ADMIN_PORT, INSTANCE_ID, CHAOS_ADMIN_TOKEN and
 * LOG_LEVEL. A bad value stops the process at once (exit 2) with a message naming the variable.
 * The Kubernetes sidecar; the local lab runs all of its proxies in one process (host-main.ts).
 */

import { runProcess } from '../lib/process-lifetime.ts';
import { faultProxyConfigFromEnv } from './config.ts';
import { startFaultProxy } from './proxy.ts';

await runProcess('fault-proxy', () => startFaultProxy(faultProxyConfigFromEnv(process.env)));
