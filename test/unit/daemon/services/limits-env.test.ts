/** Issue 22 #3: the environment's global cap against one stored by `limits set`, across restarts. */
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../../src/daemon/audit/audit-log.js';
import { CapRegistry } from '../../../../src/daemon/concurrency/cap-registry.js';
import { loadConfig } from '../../../../src/daemon/config.js';
import { EventBus } from '../../../../src/daemon/events/event-bus.js';
import { CredentialService } from '../../../../src/daemon/services/credential-service.js';
import { LimitsService } from '../../../../src/daemon/services/limits-service.js';
import { SettingsRepo } from '../../../../src/daemon/store/settings-repo.js';
import { memoryVault, type MemoryVault } from '../memory-vault.js';

let mv: MemoryVault | null = null;
afterEach(() => {
  mv?.close();
  mv = null;
});

/** One daemon start over the same database: returns the cap in force and the warnings logged. */
function start(db: MemoryVault, fromEnv: number | null) {
  const caps = new CapRegistry(db.clock, (n) => db.vault.get(n));
  const audit = new AuditLog(db.db, db.clock);
  const bus = new EventBus();
  const creds = new CredentialService(db.vault, caps, audit, bus);
  const limits = new LimitsService(caps, db.vault, creds, new SettingsRepo(db.db), audit, bus);
  const warnings: string[] = [];
  limits.init(fromEnv, fromEnv === null ? null : 'SLUICE_MAX_GLOBAL_CONCURRENT', (m) => warnings.push(m));
  return { limits, cap: caps.getGlobalCap(), warnings };
}

describe('issue 22 #3: env vs stored global cap', () => {
  it('a stored `none` does not silently override a new env value: the env wins at start and is stored', () => {
    mv = memoryVault();
    const first = start(mv, null);
    first.limits.set({ global: null });
    const second = start(mv, 8);
    expect(second.cap).toBe(8);
    expect(second.warnings).toHaveLength(1);
    expect(second.warnings[0]).toContain('SLUICE_MAX_GLOBAL_CONCURRENT=8');
    // Stored: a start without env keeps 8.
    expect(start(mv, null).cap).toBe(8);
  });

  it('a later limits set wins across restarts with the same env value, with a warning each time', () => {
    mv = memoryVault();
    const a = start(mv, 8);
    expect(a.cap).toBe(8);
    expect(a.warnings).toEqual([]);
    a.limits.set({ global: 3 });
    const b = start(mv, 8);
    expect(b.cap).toBe(3);
    expect(b.warnings).toHaveLength(1);
    expect(b.warnings[0]).toContain('overrides SLUICE_MAX_GLOBAL_CONCURRENT=8');
    // A different env value at the next start replaces it.
    const c = start(mv, 12);
    expect(c.cap).toBe(12);
    expect(c.warnings).toHaveLength(1);
  });

  it('no warning when env and stored agree', () => {
    mv = memoryVault();
    start(mv, 5);
    expect(start(mv, 5).warnings).toEqual([]);
  });

  it('an empty SLUICE_MAX_GLOBAL_CONCURRENT does not mask PROXY_MAX_GLOBAL_CONCURRENT', () => {
    const cfg = loadConfig({ HOME: '/tmp/x', SLUICE_MAX_GLOBAL_CONCURRENT: '', PROXY_MAX_GLOBAL_CONCURRENT: '16' });
    expect(cfg.globalCap).toBe(16);
    expect(cfg.globalCapVar).toBe('PROXY_MAX_GLOBAL_CONCURRENT');
    expect(cfg.warnings).toEqual([]);
  });
});
