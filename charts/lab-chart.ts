import { ApiObject, Chart, type ChartProps } from 'cdk8s';
import type { Construct } from 'constructs';

export interface LabChartProps extends ChartProps {
  /**
   * Namespace every object of the lab lives in.
   * @default 'chaos-lab'
   */
  readonly namespace?: string;
}

/**
 * The lab on Kubernetes. For now it holds only the namespace; the workloads, NetworkPolicies,
 * fault sidecars and observability stack are built on it in the Kubernetes issue.
 */
export class LabChart extends Chart {
  readonly namespaceName: string;

  constructor(scope: Construct, id: string, props: LabChartProps = {}) {
    const namespaceName = props.namespace ?? 'chaos-lab';
    // The chart-wide `namespace` prop would also stamp the cluster-scoped Namespace object
    // itself, which the API server rejects; namespaced objects set it explicitly.
    const { namespace: _ignored, ...chartProps } = props;
    super(scope, id, chartProps);
    this.namespaceName = namespaceName;

    new ApiObject(this, 'namespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespaceName, labels: { 'app.kubernetes.io/part-of': 'chaos-lab' } },
    });
  }
}
