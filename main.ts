/**
 * The cdk8s app: `npm run synth` writes the lab's manifests to dist/.
 * Importing the charts synthesizes nothing; only this entry point does.
 */
import { App } from 'cdk8s';
import { LabChart } from './charts/lab-chart.ts';

const app = new App({ outdir: 'dist' });
new LabChart(app, 'chaos-lab');
app.synth();
