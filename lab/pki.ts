import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { GATEWAY_IDENTITY, type TlsMaterial } from '../services/lib/tls.ts';
import { BACKENDS, type BackendName } from '../services/topology.ts';

/**
 * The lab's own certificate authority, for full trust (mutual TLS between the gateways and
 * the backends): generated at `up` (kept in the lab's state locally, in its Secret on
 * Kubernetes), never committed. ECDSA P-256: fast to make and to use. Each backend gets a
 * server certificate for its service's name; the gateways share one client certificate,
 * whose common name is `GATEWAY_IDENTITY`.
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

export interface KeyPairPem {
  readonly cert: string;
  readonly key: string;
}

export interface LabPki {
  /** PEM of the CA's certificate (its key is not kept: nothing is signed after `up`). */
  readonly ca: string;
  readonly gateway: KeyPairPem;
  readonly backends: Readonly<Record<BackendName, KeyPairPem>>;
}

/** How long the certificates are good for. A lab that outlives it gets new ones at its next `up`. */
export const PKI_VALIDITY_DAYS = 397;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  // Positive, 16 bytes: unique enough for a lab's few certificates.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] as number) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

export async function createLabPki(now: Date = new Date()): Promise<LabPki> {
  // Valid from an hour ago: a clock a little behind the generator's still accepts them.
  const notBefore = new Date(now.getTime() - 3_600_000);
  const notAfter = new Date(now.getTime() + PKI_VALIDITY_DAYS * DAY_MS);
  const caKeys = await keyPair();
  const caName = 'CN=chaos-lab CA, O=chaos-lab';
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  async function issue(commonName: string, usage: 'server' | 'client'): Promise<KeyPairPem> {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${commonName}, O=chaos-lab`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(
          [usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
          false,
        ),
        ...(usage === 'server'
          ? [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: commonName }], false)]
          : []),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false),
      ],
    });
    return { cert: cert.toString('pem'), key: await keyPem(keys) };
  }

  const gateway = await issue(GATEWAY_IDENTITY, 'client');
  const backends = {} as Record<BackendName, KeyPairPem>;
  for (const name of BACKENDS) backends[name] = await issue(name, 'server');
  return { ca: ca.toString('pem'), gateway, backends };
}

/** What one service process is given: the CA and its own certificate and key. */
export function tlsFor(pki: LabPki, service: BackendName | 'gateway'): TlsMaterial {
  const own = service === 'gateway' ? pki.gateway : pki.backends[service];
  return { ca: pki.ca, cert: own.cert, key: own.key };
}

/** When the certificates stop being good, or undefined when `pki` cannot be read. */
export function pkiExpiry(pki: LabPki): Date | undefined {
  try {
    return new x509.X509Certificate(pki.ca).notAfter;
  } catch {
    return undefined;
  }
}
