/**
 * What the pods of every lab Deployment share: the environment every service process reads
 * (services/lib/env.ts), annotations, and the writable /tmp of the main container. Their names
 * are services/names.ts'.
 */
import { Size } from 'cdk8s';
import { EnvFieldPaths, EnvValue, Volume } from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import type { TrustMode } from '../services/lib/trust.ts';
import { PLATFORM_PATHS, SCRAPE_ANNOTATIONS, SERVICE_ENV } from '../services/names.ts';
import { ADMIN_TOKEN_KEY, type LabSecret, type TlsOwner, TRUST_KEY_KEY } from './lab-secret.ts';

// Where lab/kube/kube-target.ts and doctor.ts still import them from; the names live in services/names.ts.
export { LABELS, PART_OF } from '../services/names.ts';

export interface LabPodSettings {
  readonly secret: LabSecret;
  readonly trustMode: TrustMode;
  readonly logLevel: string;
}

/**
 * The label on every gateway and backend pod that says the trust mode the lab was deployed with:
 * `status --target kind` reads it back.
 */
export const TRUST_MODE_LABEL = 'chaos-lab.dev/trust-mode';

/**
 * Environment of every service process, gateway or backend: `tlsOwner` names whose certificate
 * it gets. The trust key and the TLS material are given in every trust mode, not only in the one
 * that needs them: an experiment variant can switch a running lab's trust mode for a while
 * (through the fault agent), and the process must then be able to serve and call in the other.
 */
export function commonServiceEnv(settings: LabPodSettings, tlsOwner: TlsOwner): Record<string, EnvValue> {
  return {
    // The pod's name, so logs and metrics name the instance the way `kubectl get pods` does.
    [SERVICE_ENV.instanceId]: EnvValue.fromFieldRef(EnvFieldPaths.POD_NAME),
    [SERVICE_ENV.logLevel]: EnvValue.fromValue(settings.logLevel),
    [SERVICE_ENV.trustMode]: EnvValue.fromValue(settings.trustMode),
    [SERVICE_ENV.trustKey]: settings.secret.env(TRUST_KEY_KEY),
    ...settings.secret.tlsEnv(tlsOwner),
    [SERVICE_ENV.adminToken]: settings.secret.env(ADMIN_TOKEN_KEY),
  };
}

export function podAnnotations(port: number, secret: LabSecret): Record<string, string> {
  return {
    [SCRAPE_ANNOTATIONS.scrape]: 'true',
    [SCRAPE_ANNOTATIONS.port]: String(port),
    [SCRAPE_ANNOTATIONS.path]: PLATFORM_PATHS.metrics,
    'chaos-lab.dev/secret-digest': secret.digest,
  };
}

/** The emptyDir behind the main container's writable /tmp (see WRITABLE_TMP). */
export function tmpVolume(scope: Construct): Volume {
  return Volume.fromEmptyDir(scope, 'tmp-volume', 'tmp', { sizeLimit: Size.mebibytes(64) });
}
