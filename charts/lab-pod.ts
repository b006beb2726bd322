/**
 * What the pods of every lab Deployment share: labels the Kubernetes target selects them by,
 * the environment every service process reads (services/lib/env.ts), annotations, and the
 * writable /tmp of the main container.
 */
import { Size } from 'cdk8s';
import { EnvFieldPaths, EnvValue, Volume } from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import type { TrustMode } from '../services/lib/trust.ts';
import { ADMIN_TOKEN_KEY, type LabSecret, TRUST_KEY_KEY } from './lab-secret.ts';

export const PART_OF = 'chaos-lab';

/** Label keys the lab sets on its objects; the Kubernetes target selects pods by them. */
export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  dependency: 'chaos-lab.dev/dependency',
  strategy: 'chaos-lab.dev/strategy',
} as const;

export interface LabPodSettings {
  readonly secret: LabSecret;
  readonly trustMode: TrustMode;
  readonly logLevel: string;
}

/** Environment of every service process, gateway or backend. */
export function commonServiceEnv(settings: LabPodSettings): Record<string, EnvValue> {
  return {
    // The pod's name, so logs and metrics name the instance the way `kubectl get pods` does.
    INSTANCE_ID: EnvValue.fromFieldRef(EnvFieldPaths.POD_NAME),
    LOG_LEVEL: EnvValue.fromValue(settings.logLevel),
    TRUST_MODE: EnvValue.fromValue(settings.trustMode),
    TRUST_KEY: settings.secret.env(TRUST_KEY_KEY),
    CHAOS_ADMIN_TOKEN: settings.secret.env(ADMIN_TOKEN_KEY),
  };
}

export function podAnnotations(port: number, secret: LabSecret): Record<string, string> {
  return {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(port),
    'prometheus.io/path': '/metrics',
    'chaos-lab.dev/secret-digest': secret.digest,
  };
}

/** The emptyDir behind the main container's writable /tmp (see WRITABLE_TMP). */
export function tmpVolume(scope: Construct): Volume {
  return Volume.fromEmptyDir(scope, 'tmp-volume', 'tmp', { sizeLimit: Size.mebibytes(64) });
}
