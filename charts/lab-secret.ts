/**
 * The lab's one Secret: the admin API's bearer token (CHAOS_ADMIN_TOKEN) and the HMAC key the
 * gateways sign their calls with and the backends check (TRUST_KEY). Its values are never
 * committed: `npm run synth` takes them from the environment, else from a file it keeps in the
 * lab's home (git-ignored, readable only by you), else it generates them there — so repeated
 * synths give the same values, and pods that started before a re-apply still agree with those
 * that start after.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EnvValue, Secret } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { SERVICE_ENV } from '../services/names.ts';

/** Each key is named after the variable the services read it from. */
export const ADMIN_TOKEN_KEY = SERVICE_ENV.adminToken;
export const TRUST_KEY_KEY = SERVICE_ENV.trustKey;
/** The Secret's name unless the chart says otherwise; the Kubernetes target reads the token from it. */
export const LAB_SECRET_NAME = 'chaos-lab-secrets';

/** Shorter values are refused: they guard the admin API and sign every call. */
const MIN_SECRET_LENGTH = 16;

export interface LabSecretValues {
  readonly adminToken: string;
  readonly trustKey: string;
}

export interface LabSecretProps {
  /** Namespace of the Secret. */
  readonly namespace: string;
  readonly values: LabSecretValues;
  /**
   * Name of the Secret object.
   * @default LAB_SECRET_NAME ('chaos-lab-secrets')
   */
  readonly name?: string;
}

export class LabSecret extends Construct {
  readonly secret: Secret;
  /**
   * A digest of the values, put on every pod template: a changed Secret then rolls the pods,
   * which read it only when they start.
   */
  readonly digest: string;

  constructor(scope: Construct, id: string, props: LabSecretProps) {
    super(scope, id);
    checkSecretValue(props.values.adminToken, 'LabSecret values.adminToken');
    checkSecretValue(props.values.trustKey, 'LabSecret values.trustKey');
    this.secret = new Secret(this, 'secret', {
      metadata: { name: props.name ?? LAB_SECRET_NAME, namespace: props.namespace },
      stringData: {
        [ADMIN_TOKEN_KEY]: props.values.adminToken,
        [TRUST_KEY_KEY]: props.values.trustKey,
      },
    });
    this.digest = createHash('sha256')
      .update(`${props.values.adminToken}\n${props.values.trustKey}`)
      .digest('hex')
      .slice(0, 16);
  }

  env(key: typeof ADMIN_TOKEN_KEY | typeof TRUST_KEY_KEY): EnvValue {
    return EnvValue.fromSecretValue({ secret: this.secret, key });
  }
}

function checkSecretValue(value: unknown, where: string): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH || /\s/.test(value)) {
    throw new Error(`${where} is invalid: expected at least ${MIN_SECRET_LENGTH} characters without spaces`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The values for a synth: CHAOS_ADMIN_TOKEN and TRUST_KEY from `env` where set, the rest from
 * `file` (JSON `{adminToken, trustKey}`), generated and written there (mode 0600) if missing.
 */
export function labSecretValues(env: Env, file: string): LabSecretValues {
  let stored: Partial<LabSecretValues> = {};
  if (existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<LabSecretValues>;
    } catch (err) {
      throw new Error(
        `${file}: not valid JSON (${(err as Error).message}); delete it to have new secrets generated`,
      );
    }
  }
  const generated = (): string => randomBytes(24).toString('base64url');
  const values: LabSecretValues = {
    adminToken: env[ADMIN_TOKEN_KEY] || stored.adminToken || generated(),
    trustKey: env[TRUST_KEY_KEY] || stored.trustKey || generated(),
  };
  checkSecretValue(values.adminToken, env[ADMIN_TOKEN_KEY] ? ADMIN_TOKEN_KEY : `${file}: adminToken`);
  checkSecretValue(values.trustKey, env[TRUST_KEY_KEY] ? TRUST_KEY_KEY : `${file}: trustKey`);
  if (stored.adminToken !== values.adminToken || stored.trustKey !== values.trustKey) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(values, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return values;
}
