import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { LabChart } from './lab-chart.ts';

describe('LabChart', () => {
  it('synthesizes the lab namespace', () => {
    const chart = new LabChart(Testing.app(), 'lab');
    const manifests = Testing.synth(chart);
    expect(manifests).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'chaos-lab', labels: { 'app.kubernetes.io/part-of': 'chaos-lab' } },
      },
    ]);
  });

  it('takes another namespace name', () => {
    const chart = new LabChart(Testing.app(), 'lab', { namespace: 'workshop' });
    expect(Testing.synth(chart)[0].metadata.name).toBe('workshop');
  });
});
