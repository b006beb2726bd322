import { ApiObject, JsonPatch } from 'cdk8s';
import {
  type Deployment,
  k8s,
  NetworkPolicy,
  NetworkPolicyPort,
  NetworkPolicyTrafficDefault,
} from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import type { Backend } from './backend.ts';
import type { Gateway } from './gateway.ts';
import type { Grafana } from './grafana.ts';
import type { Prometheus } from './prometheus.ts';

export interface LabNetworkPoliciesProps {
  readonly namespace: string;
  readonly backends: readonly Backend[];
  readonly gateways: readonly Gateway[];
  /** Scrapes every lab pod's /metrics: let in on the backends' ports and their proxies' admin ports. */
  readonly prometheus?: Prometheus;
  /** Reached from the host (NodePort); reaches Prometheus. */
  readonly grafana?: Grafana;
}

/**
 * The network half of the trust modes: whatever TRUST_MODE says, only the gateways reach a
 * backend, only through its fault proxy, and nothing reaches any lab pod that a policy does not
 * let in.
 *
 * - `default-deny-ingress`: every pod of the namespace is isolated for ingress.
 * - `<backend>-from-gateways`: the proxy's data port (where the backend's Service sends its
 *   traffic), from the gateway pods only; the service's own port and the proxy's admin port from
 *   Prometheus only, which scrapes /metrics on both. Nothing reaches the service past its proxy
 *   but Prometheus' scrapes and the kubelet's probes.
 * - `gateway-<strategy>-from-anywhere`: the gateway port, from anywhere (the NodePort from the
 *   host); `grafana-from-anywhere` likewise; `prometheus-from-grafana`.
 *
 * The admin APIs (`/__chaos`) share the ports above — a service's with its own port, a proxy's
 * with its /metrics — so they are reachable exactly where those are, and their bearer token is
 * what guards them. The runner is not one of those sources: it reaches an admin API through a
 * port-forward (API server → kubelet → the pod's own loopback), which no NetworkPolicy sees —
 * not through the API server's pod proxy, which drops the Authorization header once it has
 * authenticated the caller, nor through a NodePort. Traffic from a pod's own node (the kubelet's
 * probes) is always let in by NetworkPolicy. Egress is left open: the pods need DNS and each
 * other.
 */
export class LabNetworkPolicies extends Construct {
  readonly defaultDeny: NetworkPolicy;
  readonly backendIngress: readonly NetworkPolicy[];
  readonly gatewayIngress: readonly NetworkPolicy[];

  constructor(scope: Construct, id: string, props: LabNetworkPoliciesProps) {
    super(scope, id);
    const { namespace } = props;

    this.defaultDeny = new NetworkPolicy(this, 'default-deny-ingress', {
      metadata: { name: 'default-deny-ingress', namespace },
      ingress: { default: NetworkPolicyTrafficDefault.DENY },
    });

    this.backendIngress = props.backends.map(
      (backend) =>
        new NetworkPolicy(this, `${backend.spec.name}-from-gateways`, {
          metadata: { name: `${backend.spec.name}-from-gateways`, namespace },
          selector: backend.deployment,
          ingress: {
            rules: [
              ...props.gateways.map((g) => ({
                peer: g.deployment,
                ports: [NetworkPolicyPort.tcp(backend.proxyPorts.data)],
              })),
              ...(props.prometheus
                ? [
                    {
                      peer: props.prometheus.deployment,
                      ports: [
                        NetworkPolicyPort.tcp(backend.port),
                        NetworkPolicyPort.tcp(backend.proxyPorts.admin),
                      ],
                    },
                  ]
                : []),
            ],
          },
        }),
    );

    const fromAnywhere = (target: { deployment: Deployment; service: { port: number } }) => {
      const name = `${target.deployment.name}-from-anywhere`;
      const policy = new NetworkPolicy(this, name, {
        metadata: { name, namespace },
        selector: target.deployment,
        ingress: { default: NetworkPolicyTrafficDefault.DENY },
      });
      // cdk8s-plus-27 wants a peer for every rule and has no "any source" peer but an ipBlock
      // (0.0.0.0/0), which implementations treat differently for pod and SNATed node traffic.
      // A rule with ports and no `from` is the spec's own "from anywhere". The patch applies to
      // the object before KubeNetworkPolicy converts it to JSON, which reads a port as the L1's
      // IntOrString: a plain number would be dropped, and the rule would open every port.
      ApiObject.of(policy).addJsonPatch(
        JsonPatch.add('/spec/ingress', [
          { ports: [{ port: k8s.IntOrString.fromNumber(target.service.port), protocol: 'TCP' }] },
        ]),
      );
      return policy;
    };
    this.gatewayIngress = props.gateways.map(fromAnywhere);

    if (props.grafana && props.prometheus) {
      fromAnywhere(props.grafana);
      new NetworkPolicy(this, 'prometheus-from-grafana', {
        metadata: { name: 'prometheus-from-grafana', namespace },
        selector: props.prometheus.deployment,
        ingress: {
          rules: [{ peer: props.grafana.deployment, ports: [NetworkPolicyPort.tcp(props.prometheus.port)] }],
        },
      });
    }
  }
}
