/** One canonical host (issue 19): the spelling policy, approvals, binding, certificates and the audit all see. */
import { describe, expect, it } from 'vitest';
import { canonicalHost, hostProblem, parseConnectTarget, requestTarget, validConnectTarget } from '../../../../src/daemon/proxy/target-syntax.js';

describe('canonicalHost', () => {
  it.each([
    ['Evil.Example', 'evil.example'],
    ['evil.example.', 'evil.example'],
    ['API.Anthropic.COM.', 'api.anthropic.com'],
    ['127.0.0.1', '127.0.0.1'],
    ['1.2.3.4.', '1.2.3.4'],
    ['[0:0::1]', '[::1]'],
    ['[0:0:0:0:0:0:0:1]', '[::1]'],
    ['[2001:DB8:0:0:0:0:0:1]', '[2001:db8::1]'],
    ['::1', '[::1]'],
    // An IPv4-mapped IPv6 address is that IPv4 address: rules written for 127.0.0.1 apply to it.
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['[::FFFF:7f00:1]', '127.0.0.1'],
    ['localhost', 'localhost'],
    ['under_score.example', 'under_score.example'],
  ])('%s → %s', (raw, canonical) => {
    expect(canonicalHost(raw)).toBe(canonical);
  });

  it.each([
    '127.1',
    '2130706433',
    '0x7f000001',
    '0177.0.0.1',
    '0x7f.0.0.1',
    '1.2.3',
    '1.2.3.256',
    'example.123',
    'evil.example..',
    '',
    '.',
    'a b',
    'exa mple.com',
    '[1.2.3.4]',
    '[zz::1]',
    'x'.repeat(300),
  ])('%s is refused', (raw) => {
    expect(canonicalHost(raw)).toBeNull();
  });

  it('names the dotted-quad form of a disguised IPv4 address in the refusal', () => {
    expect(hostProblem('2130706433')).toContain('use 127.0.0.1');
    expect(hostProblem('0x7f000001')).toContain('use 127.0.0.1');
    expect(hostProblem('127.1')).toContain('use 127.0.0.1');
    expect(hostProblem('bad host')).toContain('not a valid host');
  });
});

describe('parseConnectTarget', () => {
  it('gives the canonical host and the port', () => {
    expect(parseConnectTarget('Evil.Example.:443')).toEqual({ host: 'evil.example', port: 443 });
    expect(parseConnectTarget('[0:0::1]:8443')).toEqual({ host: '[::1]', port: 8443 });
    expect(parseConnectTarget('[::ffff:127.0.0.1]:443')).toEqual({ host: '127.0.0.1', port: 443 });
  });

  it.each(['2130706433:443', '127.1:443', 'example.com', 'example.com:0', 'example.com:65536', ':443', undefined])('%s is refused', (t) => {
    expect(parseConnectTarget(t)).toBeNull();
    expect(validConnectTarget(t)).toBe(false);
  });
});

describe('requestTarget uses the canonical host', () => {
  it('for absolute-form URLs and Host headers alike', () => {
    expect(requestTarget('http://EVIL.example./x', undefined, false)).toEqual({ host: 'evil.example', port: 80, path: '/x' });
    expect(requestTarget('/x', 'evil.example.:443', true)).toEqual({ host: 'evil.example', port: 443, path: '/x' });
  });

  it('refuses a numeric IPv4 host and keeps what the client wrote for the message', () => {
    expect(requestTarget('http://2130706433:9/x', undefined, false)).toEqual({ host: '', invalidHost: '2130706433', port: 9, path: '/x' });
  });
});
