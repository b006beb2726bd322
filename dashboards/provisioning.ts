/**
 * Grafana provisioning for the cluster deployment (issue 5): the Prometheus datasource, with
 * the uid every dashboard's datasource variable starts on, and a file provider that loads the
 * dashboards from the folder the deployment mounts them in.
 */

import { PROMETHEUS } from '../services/names.ts';
import { PROMETHEUS_DATASOURCE_UID } from './panels.ts';
import { SCRAPE_INTERVAL } from './scrape-configs.ts';

/**
 * Where the deployment mounts: Prometheus as its Service in the lab's namespace, and
 * `dashboards/*.json` as files in Grafana's container.
 */
export const GRAFANA_MOUNTS = {
  prometheusUrl: `http://${PROMETHEUS.service}:${PROMETHEUS.port}`,
  dashboardsPath: '/var/lib/grafana/dashboards/chaos-lab',
  /** Grafana reads `datasources/` and `dashboards/` below this (its `paths.provisioning`). */
  provisioningPath: '/etc/grafana/provisioning',
} as const;

export function datasourceProvisioning(): Record<string, unknown> {
  return {
    apiVersion: 1,
    datasources: [
      {
        name: 'Prometheus',
        uid: PROMETHEUS_DATASOURCE_UID,
        type: 'prometheus',
        access: 'proxy',
        url: GRAFANA_MOUNTS.prometheusUrl,
        isDefault: true,
        editable: false,
        // `$__rate_interval` is at least four of these: short windows for 10-second phases.
        jsonData: { timeInterval: SCRAPE_INTERVAL, httpMethod: 'POST' },
      },
    ],
  };
}

export function dashboardProvisioning(): Record<string, unknown> {
  return {
    apiVersion: 1,
    providers: [
      {
        name: 'chaos-lab',
        folder: 'chaos-lab',
        type: 'file',
        disableDeletion: true,
        // The files are generated (`npm run dashboards`): edits belong in dashboards/*.ts.
        allowUiUpdates: false,
        updateIntervalSeconds: 30,
        options: { path: GRAFANA_MOUNTS.dashboardsPath, foldersFromFilesStructure: false },
      },
    ],
  };
}
