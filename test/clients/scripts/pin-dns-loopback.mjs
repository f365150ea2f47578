// Test-only preload for the "without sluicectl run" case: every DNS lookup answers 127.0.0.1, so a request
// that bypasses the proxy can never leave this machine (it fails to connect instead). It routes nothing
// through any proxy.
import dns from 'node:dns';

dns.lookup = function lookup(_host, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options !== null && options.all;
  queueMicrotask(() => (all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
};
