/**
 * The environment an agent needs to use sluice: proxy URLs with the access token, the sluice CA for Node,
 * and a CA bundle (system roots + sluice CA) for curl, git and Python so hosts outside the proxy still verify.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ProxyEnv } from '../../shared/protocol/results.js';

const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** The Node bootstrap shipped with the package. */
export const BOOTSTRAP_PATH = fileURLToPath(new URL('../../bootstrap/node-proxy.js', import.meta.url));

/** Writes `<caDir>/bundle.pem`: the system's roots (else Node's) followed by the sluice CA. */
export function writeCaBundle(caDir: string, caPem: string): string {
  const bundlePath = path.join(caDir, 'bundle.pem');
  const system = SYSTEM_BUNDLES.find((f) => fs.existsSync(f));
  const roots = system ? fs.readFileSync(system, 'utf8') : tls.rootCertificates.join('\n');
  const tmp = bundlePath + '.tmp';
  fs.writeFileSync(tmp, `${roots.trimEnd()}\n# sluice local CA\n${caPem.trim()}\n`, { mode: 0o644 });
  fs.renameSync(tmp, bundlePath);
  return bundlePath;
}

/** Builds the variables for an agent. `token` is null when proxy auth is off. */
export function agentEnv(o: { host: string; port: number; token: string | null; caPath: string; bundlePath: string }): ProxyEnv {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const auth = o.token ? `sluice:${o.token}@` : '';
  const proxyUrl = `http://${auth}${host}:${o.port}`;
  const vars: Record<string, string> = {
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    NODE_EXTRA_CA_CERTS: o.caPath,
    // A file URL keeps NODE_OPTIONS intact when the install path has spaces.
    NODE_OPTIONS: `--import=${pathToFileURL(BOOTSTRAP_PATH).href}`,
    NODE_USE_ENV_PROXY: '1',
    SSL_CERT_FILE: o.bundlePath,
    REQUESTS_CA_BUNDLE: o.bundlePath,
    CURL_CA_BUNDLE: o.bundlePath,
    GIT_SSL_CAINFO: o.bundlePath,
    // git first tries CONNECT without credentials (anyauth) and only sends the token after a 407.
    GIT_HTTP_PROXY_AUTHMETHOD: 'basic',
    // Codex prefers this over SSL_CERT_FILE when set; point it at the sluice CA so a stale value elsewhere
    // cannot break it.
    CODEX_CA_CERTIFICATE: o.caPath,
  };
  return { proxy_url: proxyUrl, ca_path: o.caPath, ca_bundle_path: o.bundlePath, bootstrap_path: BOOTSTRAP_PATH, vars };
}
