/** Upgrade validation before admission: ws's rules, version 13 only. */
import type http from 'node:http';
import { describe, expect, test } from 'vitest';
import { upgradeProblem } from '../../../../src/daemon/proxy/websocket-handshake.js';

const KEY = Buffer.alloc(16, 3).toString('base64');
const req = (headers: Record<string, string>, method = 'GET') =>
  ({ method, headers: { upgrade: 'websocket', 'sec-websocket-key': KEY, 'sec-websocket-version': '13', ...headers } }) as unknown as http.IncomingMessage;

describe('upgradeProblem', () => {
  test('a valid upgrade passes (with or without subprotocols)', () => {
    expect(upgradeProblem(req({}))).toBeNull();
    expect(upgradeProblem(req({ 'sec-websocket-protocol': 'openai-beta.realtime-v1, json' }))).toBeNull();
    expect(upgradeProblem(req({ upgrade: 'WebSocket' }))).toBeNull();
  });

  test.each([
    ['POST', {}],
    ['GET', { upgrade: 'h2c' }],
    ['GET', { 'sec-websocket-key': '' }],
    ['GET', { 'sec-websocket-key': Buffer.alloc(15, 1).toString('base64') }],
    ['GET', { 'sec-websocket-key': Buffer.alloc(17, 1).toString('base64') }],
    ['GET', { 'sec-websocket-key': 'AAAAAAAAAAAAAAAAAAAAA*==' }],
    ['GET', { 'sec-websocket-version': '8' }],
    ['GET', { 'sec-websocket-version': '' }],
    ['GET', { 'sec-websocket-version': '13, 8' }],
    ['GET', { 'sec-websocket-protocol': 'a b' }],
    ['GET', { 'sec-websocket-protocol': 'a,,b' }],
    ['GET', { 'sec-websocket-protocol': 'a, a' }],
  ])('%s %j is refused', (method, headers) => {
    expect(upgradeProblem(req(headers as Record<string, string>, method))).toMatch(/\S/);
  });
});
