import { describe, expect, test } from 'vitest';
import { isValidHost, requestTarget } from '../../../../src/daemon/proxy/target-syntax.js';
import { forwardableHeaders } from '../../../../src/daemon/proxy/relay-response.js';

describe('requestTarget', () => {
  test('inside TLS: the Host header, port 443 by default, the path untouched', () => {
    expect(requestTarget('/v1/messages?beta=true', 'API.Anthropic.com', true)).toEqual({
      host: 'api.anthropic.com',
      port: 443,
      path: '/v1/messages?beta=true',
    });
    expect(requestTarget('/a/../b//c', 'api.openai.com:8443', true)).toEqual({ host: 'api.openai.com', port: 8443, path: '/a/../b//c' });
  });

  test('plain proxying: the absolute URL wins over the Host header; the default port follows its scheme', () => {
    expect(requestTarget('http://example.com/x?y=1', 'other.example', false)).toEqual({ host: 'example.com', port: 80, path: '/x?y=1' });
    expect(requestTarget('https://example.com:8443', undefined, false)).toEqual({ host: 'example.com', port: 8443, path: '/' });
    expect(requestTarget('http://example.com?q', undefined, false)).toEqual({ host: 'example.com', port: 80, path: '/?q' });
    expect(requestTarget('/x', 'example.com', false)).toEqual({ host: 'example.com', port: 80, path: '/x' });
  });

  test('IPv6 literals keep their brackets (and so their port is not mistaken for part of the address)', () => {
    expect(requestTarget('/', '[::1]:8080', false)).toEqual({ host: '[::1]', port: 8080, path: '/' });
    expect(requestTarget('http://[2001:db8::1]/p', undefined, false)).toEqual({ host: '[2001:db8::1]', port: 80, path: '/p' });
  });

  test('no usable authority → host "" (refused as invalid_host by admission)', () => {
    for (const [url, host] of [
      ['/', undefined],
      ['/', ''],
      ['/', 'a:b:c'],
      ['/', 'example.com:0'],
      ['/', 'example.com:99999'],
      ['http:///x', undefined],
    ] as const) {
      const t = requestTarget(url, host, true);
      expect(t.host, `${url} ${host}`).toBe('');
      expect(isValidHost(t.host)).toBe(false);
    }
  });
});

describe('forwardableHeaders', () => {
  test('drops hop-by-hop headers, those the Connection header names, and key pins; keeps the rest as they are', () => {
    const out = forwardableHeaders({
      connection: 'keep-alive, X-Private',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'proxy-authenticate': 'Basic',
      upgrade: 'h2c',
      trailer: 'x-sum',
      'x-private': 'hop only',
      'public-key-pins': 'pin',
      'public-key-pins-report-only': 'pin',
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
      'content-length': '12',
    });
    expect(out).toEqual({ 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'content-length': '12' });
  });
});
