/**
 * Issue 22 #5–#7: one `pool_exhausted` row per exhaustion, every mutation publishes its event, and a
 * removed credential's counters and cooldown are forgotten.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CapRegistry } from '../../../../src/daemon/concurrency/cap-registry.js';
import { RequestStats } from '../../../../src/daemon/events/request-stats.js';
import { CredentialService } from '../../../../src/daemon/services/credential-service.js';
import { LimitsService } from '../../../../src/daemon/services/limits-service.js';
import { SettingsRepo } from '../../../../src/daemon/store/settings-repo.js';
import type { EventType } from '../../../../src/shared/protocol/events.js';
import { oauthWorld, type OAuthWorld } from '../oauth/oauth-setup.js';

let w: OAuthWorld;
afterEach(() => w?.close());

function apiKey(name: string) {
  return w.vault.add({ name, kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: `sk-ant-api03-REAL${name}xxxxxxxxxxxxxxxxxxxxxxxx` });
}

function events() {
  const seen: { type: EventType; payload: unknown }[] = [];
  w.bus.subscribe((type, payload) => seen.push({ type, payload }));
  return seen;
}

function auditRows(event: string) {
  w.audit.flush();
  return w.audit.tail(1000).filter((r) => r.event === event);
}

describe('issue 22 #5: one pool_exhausted row per event', () => {
  it('a burst of late failures after every member cooled writes one row, and a new exhaustion after 30 s another', () => {
    w = oauthWorld();
    apiKey('a');
    apiKey('b');
    w.pools.create('p', ['a', 'b']);
    const until = () => w.clock.now() + 60_000;
    w.pools.failover('p', 'a', 'rate_limited', until()); // a → b
    w.pools.failover('p', 'b', 'rate_limited', until()); // exhausted
    // Late failures of the same burst, from both members.
    for (let i = 0; i < 8; i++) w.pools.failover('p', i % 2 ? 'a' : 'b', 'rate_limited', until());
    expect(auditRows('cred_failover')).toHaveLength(1);
    expect(auditRows('pool_exhausted')).toHaveLength(1);
    w.clock.advance(30_000);
    w.pools.failover('p', 'b', 'rate_limited', until());
    expect(auditRows('pool_exhausted')).toHaveLength(2);
  });

  it('after the pool recovers and switches, the next exhaustion writes its own row at once', () => {
    w = oauthWorld();
    apiKey('a');
    apiKey('b');
    w.pools.create('p', ['a', 'b']);
    w.pools.failover('p', 'a', 'rate_limited', w.clock.now() + 1_000);
    w.pools.failover('p', 'b', 'rate_limited', w.clock.now() + 60_000);
    expect(auditRows('pool_exhausted')).toHaveLength(1);
    w.clock.advance(1_000); // a healthy again
    w.pools.reset('p');
    w.pools.failover('p', 'b', 'rate_limited', w.clock.now() + 60_000); // b → a
    w.pools.failover('p', 'a', 'rate_limited', w.clock.now() + 60_000); // exhausted again
    expect(auditRows('pool_exhausted')).toHaveLength(2);
  });
});

describe('issue 22 #6: every mutation publishes its event', () => {
  it('pool.remove publishes pool.changed with removed: true', () => {
    w = oauthWorld();
    apiKey('a');
    w.pools.create('p', ['a']);
    const seen = events();
    w.pools.remove('p');
    const ev = seen.find((e) => e.type === 'pool.changed');
    expect(ev?.payload).toMatchObject({ removed: true, pool: { name: 'p' } });
  });

  it('a cap change made with cred.update publishes limits.changed (once; limits.set publishes it once too)', () => {
    w = oauthWorld();
    apiKey('a');
    const caps = new CapRegistry(w.clock, (n) => w.vault.get(n));
    const creds = new CredentialService(w.vault, caps, w.audit, w.bus);
    const limits = new LimitsService(caps, w.vault, creds, new SettingsRepo(w.db), w.audit, w.bus);
    const seen = events();
    creds.update({ name: 'a', max_concurrent: 3 });
    expect(seen.filter((e) => e.type === 'limits.changed')).toHaveLength(1);
    expect(seen.filter((e) => e.type === 'cred.changed')).toHaveLength(1);
    limits.set({ cred: 'a', max_concurrent: 4 });
    expect(seen.filter((e) => e.type === 'limits.changed')).toHaveLength(2);
  });
});

describe('issue 22 #7: a removed credential is forgotten', () => {
  it('a credential re-added under the same name starts with zero counters and no cooldown', () => {
    w = oauthWorld();
    apiKey('a');
    const caps = new CapRegistry(w.clock, (n) => w.vault.get(n));
    const stats = new RequestStats(w.clock);
    const creds = new CredentialService(
      w.vault,
      caps,
      w.audit,
      w.bus,
      () => null,
      (n) => {
        stats.forget(n);
        w.health.clear(n);
      },
    );
    for (let i = 0; i < 3; i++) stats.recordFinished('a', 200);
    w.health.cool('a', w.clock.now() + 60_000, 'rate_limited');
    expect(stats.countersFor('a')).toMatchObject({ total: 3, status_2xx: 3 });
    creds.remove('a');
    apiKey('a');
    expect(stats.countersFor('a')).toMatchObject({ total: 0, status_2xx: 0 });
    expect(w.health.isHealthy('a')).toBe(true);
  });
});
