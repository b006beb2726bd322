/**
 * The lab's one Secret: the admin API's bearer token (CHAOS_ADMIN_TOKEN), the HMAC key the
 * gateways sign their calls with and the backends check (TRUST_KEY), and the lab's PKI for full
 * trust (mutual TLS): the CA's certificate, the gateways' client certificate and key, and each
 * backend's server certificate and key. Its values are never committed: `npm run synth` takes the
 * token and the key from the environment, else from a file it keeps in the lab's home (git-ignored,
 * readable only by you), else it generates them there, and the PKI likewise from that file — so
 * repeated synths give the same values, and pods that started before a re-apply still agree with
 * those that start after.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EnvValue, Secret } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { createLabPki, type KeyPairPem, type LabPki, pkiExpiry } from '../lab/pki.ts';
import { GATEWAY_SERVICE, SERVICE_ENV } from '../services/names.ts';
import { BACKENDS, type BackendName } from '../services/topology.ts';

/** Each key is named after the variable the services read it from. */
export const ADMIN_TOKEN_KEY = SERVICE_ENV.adminToken;
export const TRUST_KEY_KEY = SERVICE_ENV.trustKey;
/** The lab CA's certificate (PEM), which every service trusts: the same name as its variable. */
export const TLS_CA_KEY = SERVICE_ENV.tlsCa;
/** The Secret's name unless the chart says otherwise; the Kubernetes target reads the token from it. */
export const LAB_SECRET_NAME = 'chaos-lab-secrets';

/** Whose certificate: a backend's (its server certificate) or the gateways' (their one client certificate). */
export type TlsOwner = BackendName | typeof GATEWAY_SERVICE;

/**
 * The keys of the Secret that hold an owner's certificate and private key (PEM):
 * `TLS_GATEWAY_CERT`/`TLS_GATEWAY_KEY`, `TLS_COIN_CERT`/`TLS_COIN_KEY`. A pod gets its owner's as
 * TLS_CERT and TLS_KEY.
 */
export function tlsSecretKeys(owner: TlsOwner): { readonly cert: string; readonly key: string } {
  const prefix = `TLS_${owner.toUpperCase()}`;
  return { cert: `${prefix}_CERT`, key: `${prefix}_KEY` };
}

/** Every owner of a certificate, the gateways first. */
export const TLS_OWNERS: readonly TlsOwner[] = [GATEWAY_SERVICE, ...BACKENDS];

/** Shorter values are refused: they guard the admin API and sign every call. */
const MIN_SECRET_LENGTH = 16;
/** A PKI is made anew when it would expire within this: a lab `up` again keeps working for a month. */
export const PKI_RENEW_BEFORE_DAYS = 30;
const DAY_MS = 86_400_000;

export interface LabSecretValues {
  readonly adminToken: string;
  readonly trustKey: string;
  /** The lab's CA and certificates (lab/pki.ts). */
  readonly pki: LabPki;
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
   * A digest of the values, PKI included, put on every pod template: a changed Secret then rolls
   * the pods, which read it only when they start.
   */
  readonly digest: string;

  constructor(scope: Construct, id: string, props: LabSecretProps) {
    super(scope, id);
    const { adminToken, trustKey, pki } = props.values;
    checkSecretValue(adminToken, 'LabSecret values.adminToken');
    checkSecretValue(trustKey, 'LabSecret values.trustKey');
    const pkiProblem = pkiShapeProblem(pki);
    if (pkiProblem) throw new Error(`LabSecret values.pki is invalid: ${pkiProblem}`);
    const tls = pkiEntries(pki);
    this.secret = new Secret(this, 'secret', {
      metadata: { name: props.name ?? LAB_SECRET_NAME, namespace: props.namespace },
      stringData: { [ADMIN_TOKEN_KEY]: adminToken, [TRUST_KEY_KEY]: trustKey, ...tls },
    });
    this.digest = createHash('sha256')
      .update(JSON.stringify([adminToken, trustKey, tls]))
      .digest('hex')
      .slice(0, 16);
  }

  env(key: typeof ADMIN_TOKEN_KEY | typeof TRUST_KEY_KEY): EnvValue {
    return EnvValue.fromSecretValue({ secret: this.secret, key });
  }

  /** TLS_CA, TLS_CERT and TLS_KEY of a service process: the lab's CA and its owner's certificate and key. */
  tlsEnv(owner: TlsOwner): Record<string, EnvValue> {
    const keys = tlsSecretKeys(owner);
    const ref = (key: string) => EnvValue.fromSecretValue({ secret: this.secret, key });
    return {
      [SERVICE_ENV.tlsCa]: ref(TLS_CA_KEY),
      [SERVICE_ENV.tlsCert]: ref(keys.cert),
      [SERVICE_ENV.tlsKey]: ref(keys.key),
    };
  }
}

/** The PKI as the Secret's entries: TLS_CA, then each owner's certificate and key. */
function pkiEntries(pki: LabPki): Record<string, string> {
  const entries: Record<string, string> = { [TLS_CA_KEY]: pki.ca };
  for (const owner of TLS_OWNERS) {
    const keys = tlsSecretKeys(owner);
    const pair = ownPair(pki, owner);
    entries[keys.cert] = pair.cert;
    entries[keys.key] = pair.key;
  }
  return entries;
}

function ownPair(pki: LabPki, owner: TlsOwner): KeyPairPem {
  return owner === GATEWAY_SERVICE ? pki.gateway : pki.backends[owner];
}

function checkSecretValue(value: unknown, where: string): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH || /\s/.test(value)) {
    throw new Error(`${where} is invalid: expected at least ${MIN_SECRET_LENGTH} characters without spaces`);
  }
}

const isPem = (value: unknown, label: 'CERTIFICATE' | 'PRIVATE KEY'): boolean =>
  typeof value === 'string' && value.includes(`-----BEGIN ${label}-----`);

/**
 * What is wrong with the shape of a PKI (PEM strings for the CA and every owner), or undefined.
 * The services check the same markers (services/lib/tls.ts): a pod would otherwise crash at start.
 */
function pkiShapeProblem(pki: unknown): string | undefined {
  const value = pki as Partial<LabPki> | undefined;
  if (typeof value !== 'object' || value === null) return 'missing';
  if (!isPem(value.ca, 'CERTIFICATE')) return 'ca is not a PEM certificate';
  for (const owner of TLS_OWNERS) {
    const pair = (owner === GATEWAY_SERVICE ? value.gateway : value.backends?.[owner]) as
      | Partial<KeyPairPem>
      | undefined;
    const where = owner === GATEWAY_SERVICE ? 'gateway' : `backends.${owner}`;
    if (!isPem(pair?.cert, 'CERTIFICATE')) return `${where}.cert is not a PEM certificate`;
    if (!isPem(pair?.key, 'PRIVATE KEY')) return `${where}.key is not a PEM private key`;
  }
  return undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

interface StoredSecrets {
  readonly adminToken?: string;
  readonly trustKey?: string;
  readonly pki?: LabPki;
}

export interface LabSecretValuesOptions {
  /** The clock a stored PKI's expiry is judged by, and a new one is made at. @default now */
  readonly now?: Date;
}

/**
 * The values for a synth: CHAOS_ADMIN_TOKEN and TRUST_KEY from `env` where set, the rest from
 * `file` (JSON `{adminToken, trustKey, pki}`), generated and written there (mode 0600) if missing.
 * The PKI is made anew when the file has none, when it cannot be read, or when it expires within
 * {@link PKI_RENEW_BEFORE_DAYS} days: the pods then roll (the Secret's digest changes).
 */
export async function labSecretValues(
  env: Env,
  file: string,
  options: LabSecretValuesOptions = {},
): Promise<LabSecretValues> {
  const now = options.now ?? new Date();
  let stored: StoredSecrets = {};
  if (existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets;
    } catch (err) {
      throw new Error(
        `${file}: not valid JSON (${(err as Error).message}); delete it to have new secrets generated`,
      );
    }
  }
  const generated = (): string => randomBytes(24).toString('base64url');
  const adminToken = env[ADMIN_TOKEN_KEY] || stored.adminToken || generated();
  const trustKey = env[TRUST_KEY_KEY] || stored.trustKey || generated();
  checkSecretValue(adminToken, env[ADMIN_TOKEN_KEY] ? ADMIN_TOKEN_KEY : `${file}: adminToken`);
  checkSecretValue(trustKey, env[TRUST_KEY_KEY] ? TRUST_KEY_KEY : `${file}: trustKey`);
  const pki = usablePki(stored.pki, now) ?? (await createLabPki(now));
  const values: LabSecretValues = { adminToken, trustKey, pki };
  if (stored.adminToken !== adminToken || stored.trustKey !== trustKey || stored.pki !== pki) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(values, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return values;
}

/** The stored PKI when it is whole, readable and good for more than PKI_RENEW_BEFORE_DAYS. */
function usablePki(pki: LabPki | undefined, now: Date): LabPki | undefined {
  if (pki === undefined || pkiShapeProblem(pki) !== undefined) return undefined;
  const expiry = pkiExpiry(pki);
  if (expiry === undefined || expiry.getTime() - now.getTime() < PKI_RENEW_BEFORE_DAYS * DAY_MS) {
    return undefined;
  }
  return pki;
}

/**
 * A PKI of PEM-shaped stand-ins that no TLS library would load, each naming its owner after
 * `label`: for a synth whose objects are only deleted or counted, and for snapshots, which must
 * not change with every run as a generated PKI would.
 */
export function placeholderPki(label: string): LabPki {
  const pem = (kind: 'CERTIFICATE' | 'PRIVATE KEY', owner: string) =>
    `-----BEGIN ${kind}-----\n${label}-${owner}\n-----END ${kind}-----\n`;
  const pair = (owner: string): KeyPairPem => ({
    cert: pem('CERTIFICATE', owner),
    key: pem('PRIVATE KEY', owner),
  });
  return {
    ca: pem('CERTIFICATE', 'ca'),
    gateway: pair(GATEWAY_SERVICE),
    backends: Object.fromEntries(BACKENDS.map((name) => [name, pair(name)])) as Record<
      BackendName,
      KeyPairPem
    >,
  };
}
