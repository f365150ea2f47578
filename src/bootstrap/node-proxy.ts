/**
 * Preloaded into agents' Node processes (`NODE_OPTIONS=--import=…`) by `sluicectl env`/`run`. Node 20's
 * built-in fetch ignores HTTPS_PROXY, so an unmodified SDK script would bypass sluice and never get its
 * key; installing undici's EnvHttpProxyAgent as the global dispatcher routes fetch through the proxy
 * (honouring NO_PROXY). Node's fetch reads the same global dispatcher symbol undici sets.
 */
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

if (process.env.HTTPS_PROXY || process.env.https_proxy || process.env.HTTP_PROXY || process.env.http_proxy) {
  setGlobalDispatcher(new EnvHttpProxyAgent());
}
