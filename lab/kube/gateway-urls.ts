/**
 * Where the lab's NodePorts (the gateways', Grafana's) answer from this machine.
 *
 * - On kind, each NodePort is a node's containerPort mapped to a host port by the kind
 *   configuration's extraPortMappings: on Docker Desktop the node's own address is unreachable.
 * - On any other cluster (`--context`), a NodePort answers on every node: the InternalIP of a
 *   Ready node, which is what a local cluster (k3d, minikube, a VM) and a cluster's own network
 *   reach. An ExternalIP is not preferred even when there is one: clouds usually firewall NodePorts
 *   there. Where the nodes cannot be reached from here at all, CHAOS_LAB_GATEWAY_HOST names the
 *   host that can (an SSH tunnel, an external address opened for the ports, a load balancer).
 */
import { gatewayNodePort } from '../../charts/gateway.ts';
import { GRAFANA_NODE_PORT } from '../../charts/grafana.ts';
import { STRATEGIES, type Strategy } from '../../services/topology.ts';
import type { NodeInfo } from './cluster.ts';
import { GATEWAY_HOST_ENV, type KindConfig } from './kind-config.ts';

export { GATEWAY_HOST_ENV } from './kind-config.ts';

/**
 * The gateways' URLs on this machine from the kind configuration's host ports. Throws when one is
 * not mapped.
 */
export function gatewayUrls(config: KindConfig): Record<Strategy, string> {
  return Object.fromEntries(
    STRATEGIES.map((strategy) => {
      const nodePort = gatewayNodePort(strategy);
      const url = config.hostUrls.get(nodePort);
      if (!url) {
        throw new Error(
          `${config.file}: no extraPortMappings entry maps a host port to NodePort ${nodePort} (gateway-${strategy}); add { containerPort: ${nodePort}, hostPort: <free port>, listenAddress: 127.0.0.1 } and recreate the cluster`,
        );
      }
      return [strategy, url];
    }),
  ) as Record<Strategy, string>;
}

/**
 * The host of the NodePorts on a cluster that is not kind: `override` (CHAOS_LAB_GATEWAY_HOST) when
 * given, else the InternalIP of the first Ready node in name order. Throws, naming the nodes and the
 * variable, when no Ready node has one. `context` is for the message.
 */
export function nodePortHost(
  nodes: readonly NodeInfo[],
  override: string | undefined,
  context: string,
): string {
  const given = override?.trim();
  if (given) return given;
  const ready = [...nodes].filter((n) => n.ready).sort((a, b) => a.name.localeCompare(b.name));
  for (const node of ready) {
    const internal = node.addresses.find((a) => a.type === 'InternalIP')?.address;
    if (internal) return internal.includes(':') ? `[${internal}]` : internal;
  }
  const seen = nodes.map((n) => `${n.name} (${n.ready ? 'no InternalIP' : 'not Ready'})`).join(', ');
  throw new Error(
    `no Ready node of context ${context} has an InternalIP to reach the lab's NodePorts at (nodes: ${seen || 'none'}); set ${GATEWAY_HOST_ENV} to a host of this machine's network that reaches them`,
  );
}

/** The gateways' and Grafana's URLs on `host`, their NodePorts. */
export function nodePortUrls(host: string): { gateways: Record<Strategy, string>; grafana: string } {
  return {
    gateways: Object.fromEntries(
      STRATEGIES.map((strategy) => [strategy, `http://${host}:${gatewayNodePort(strategy)}`]),
    ) as Record<Strategy, string>,
    grafana: `http://${host}:${GRAFANA_NODE_PORT}`,
  };
}
