/**
 * The cdk8s app: `npm run synth` writes the lab's manifests to dist/.
 * Importing the charts synthesizes nothing; only this entry point does.
 *
 * CHAOS_ADMIN_TOKEN and TRUST_KEY, if set, go into the lab's Secret; otherwise the values kept
 * in .chaos-lab/kind-secrets.json (CHAOS_LAB_HOME moves it) are used, generated there the first
 * time, with the lab's CA and certificates. TRUST_MODE (zero, half or full) is the pods' trust
 * mode, half unless set. CHAOS_LAB_IMAGE names another image than chaos-lab:dev (a registry's,
 * for a cluster that cannot `kind load`).
 *
 * The k6 Job is a chart of its own (dist/k6-job.k8s.yaml), so that applying the lab starts no load.
 */
import path from 'node:path';
import { App } from 'cdk8s';
import { K6JobChart } from './charts/k6-job.ts';
import { LabChart } from './charts/lab-chart.ts';
import { labSecretValues } from './charts/lab-secret.ts';
import { isTrustMode, TRUST_MODES, type TrustMode } from './services/lib/trust.ts';
import { SERVICE_ENV } from './services/names.ts';

function trustModeFromEnv(): TrustMode | undefined {
  const given = process.env[SERVICE_ENV.trustMode]?.trim();
  if (!given) return undefined;
  if (isTrustMode(given)) return given;
  throw new Error(
    `${SERVICE_ENV.trustMode}=${JSON.stringify(given)} is not a trust mode: use ${TRUST_MODES.join(', ')} (or leave it unset for half)`,
  );
}

const trustMode = trustModeFromEnv();
// The lab's home, resolved as the local lab resolves it (lab/local/state.ts).
const home = path.resolve(process.env.CHAOS_LAB_HOME || path.join(import.meta.dirname, '.chaos-lab'));
const app = new App({ outdir: process.env.CDK8S_OUTDIR || 'dist' });
new LabChart(app, 'chaos-lab', {
  secrets: await labSecretValues(process.env, path.join(home, 'kind-secrets.json')),
  ...(process.env.CHAOS_LAB_IMAGE ? { image: process.env.CHAOS_LAB_IMAGE } : {}),
  ...(trustMode ? { trustMode } : {}),
});
new K6JobChart(app, 'k6-job');
app.synth();
