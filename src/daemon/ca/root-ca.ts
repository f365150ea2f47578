/**
 * The local root CA that signs per-host leaf certificates. Created on first start (EC P-256, 10 years):
 * `ca/ca.pem` (0644, what agents trust) and `ca/ca-key.pem` (0600). Loading checks the key's permissions.
 */
import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import crypto, { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SluiceError } from '../../shared/protocol/error-codes.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** The signing algorithm for the CA and all leaves. */
export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A loaded CA: its certificate and private signing key. */
export interface RootCa {
  cert: x509.X509Certificate;
  certPem: string;
  key: CryptoKey;
  certPath: string;
}

/** A positive random serial number in hex. */
export function randomSerial(): string {
  const b = crypto.randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

async function createCa(dir: string): Promise<void> {
  const keys = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=sluice local CA (${process.env.USER ?? 'user'}), O=sluice`,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + 10 * 365 * 24 * 60 * 60 * 1000),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), keyPem, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(path.join(dir, 'ca.pem'), cert.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
}

/** Loads the CA from `dir`, creating it first when absent. */
export async function loadOrCreateRootCa(dir: string): Promise<RootCa> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certPath = path.join(dir, 'ca.pem');
  const keyPath = path.join(dir, 'ca-key.pem');
  if (!fs.existsSync(certPath) && !fs.existsSync(keyPath)) await createCa(dir);
  if (!fs.existsSync(certPath) || !fs.existsSync(keyPath)) {
    throw new SluiceError('internal', `CA in ${dir} is incomplete (need ca.pem and ca-key.pem); remove both to make a new one`);
  }
  const mode = fs.statSync(keyPath).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new SluiceError('internal', `CA key ${keyPath} is readable by other users (mode ${mode.toString(8)}); chmod 600 it`);
  const certPem = fs.readFileSync(certPath, 'utf8');
  const der = crypto.createPrivateKey(fs.readFileSync(keyPath)).export({ type: 'pkcs8', format: 'der' });
  const key = await webcrypto.subtle.importKey('pkcs8', der, EC_ALG, false, ['sign']);
  return { cert: new x509.X509Certificate(certPem), certPem, key, certPath };
}
