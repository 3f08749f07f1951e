import { describe, expect, it } from 'vitest';
import { RetentionRefused, decideRetention, type Dated } from '../src/retention';

const at = (iso: string, id = iso): Dated => ({ id, time: iso });
const ids = (list: readonly Dated[]) => list.map((backup) => backup.id).sort();

function dailyBackups(from: string, days: number): Dated[] {
  const start = Date.parse(from);
  return Array.from({ length: days }, (_, i) => {
    const time = new Date(start + i * 86_400_000).toISOString();
    return at(time, time.slice(0, 10));
  });
}

describe('decideRetention', () => {
  it('a simulated year of nightly backups, pruned after each one, leaves exactly the GFS set', () => {
    // Clock injected: each night a backup is taken at 02:00 UTC and retention runs right after.
    let stored: Dated[] = [];
    for (const backup of dailyBackups('2025-01-01T02:00:00Z', 365)) {
      stored.push(backup);
      const decision = decideRetention(stored, { keepDaily: 7, keepWeekly: 4, keepMonthly: 3, minKeep: 3 }, new Date(backup.time));
      stored = decision.keep.map((kept) => kept.backup);
    }
    expect(ids(stored)).toEqual([
      '2025-10-31', // monthly October
      '2025-11-30', // monthly November
      '2025-12-14', // weekly 2025-W50
      '2025-12-21', // weekly 2025-W51
      '2025-12-25',
      '2025-12-26',
      '2025-12-27',
      '2025-12-28', // daily, and weekly 2025-W52
      '2025-12-29',
      '2025-12-30',
      '2025-12-31', // daily, weekly 2026-W01, monthly December
    ]);
  });

  it('one decision over a full year equals the day-by-day result', () => {
    const all = dailyBackups('2025-01-01T02:00:00Z', 365);
    const policy = { keepDaily: 7, keepWeekly: 4, keepMonthly: 3, keepYearly: 2 };
    const once = decideRetention(all, policy, new Date('2025-12-31T03:00:00Z'));
    expect(once.keep.length + once.prune.length).toBe(365);
    expect(ids(once.keep.map((k) => k.backup))).toContain('2025-12-31');
    expect(once.keep.find((k) => k.backup.id === '2025-12-31')!.reasons).toEqual(
      expect.arrayContaining(['daily 2025-12-31', 'weekly 2026-W01', 'monthly 2025-12', 'yearly 2025']),
    );
  });

  it('keep-days keeps everything inside the window', () => {
    const all = dailyBackups('2025-03-01T02:00:00Z', 30);
    const decision = decideRetention(all, { keepDays: 14, minKeep: 0 }, new Date('2025-03-30T02:00:00Z'));
    expect(decision.keep).toHaveLength(15);
    expect(ids(decision.prune)).toContain('2025-03-15');
    expect(ids(decision.keep.map((k) => k.backup))).toContain('2025-03-16');
  });

  it('min-keep protects the newest backups even when rules keep nothing', () => {
    const all = dailyBackups('2025-03-01T02:00:00Z', 10);
    const decision = decideRetention(all, { keepDays: 1, minKeep: 5 }, new Date('2026-01-01T00:00:00Z'));
    expect(ids(decision.keep.map((k) => k.backup))).toEqual(['2025-03-06', '2025-03-07', '2025-03-08', '2025-03-09', '2025-03-10']);
  });

  it('refuses a prune that would delete every backup', () => {
    const all = dailyBackups('2025-03-01T02:00:00Z', 4);
    expect(() => decideRetention(all, { keepDays: 1, minKeep: 0 }, new Date('2026-01-01T00:00:00Z'))).toThrow(/would delete all 4 backups; refusing/);
    expect(() => decideRetention(all, { minKeep: 0 }, new Date('2025-03-05T00:00:00Z'))).toThrow(RetentionRefused);
    // The default min-keep of 3 is what saves a too-strict policy.
    expect(decideRetention(all, { keepDays: 1 }, new Date('2026-01-01T00:00:00Z')).prune).toHaveLength(1);
  });

  it('refuses to decide when a manifest time is unreadable', () => {
    expect(() => decideRetention([at('2025-01-01T00:00:00Z', 'a'), { id: 'b', time: 'yesterday' }], { keepDaily: 7 }, new Date())).toThrow(RetentionRefused);
  });

  it('uses ISO weeks across a year boundary', () => {
    // 2026-01-01 is a Thursday: it belongs to 2026-W01 together with 2025-12-29..31.
    const decision = decideRetention(
      [at('2025-12-29T12:00:00Z', 'mon'), at('2026-01-01T12:00:00Z', 'thu'), at('2025-12-28T12:00:00Z', 'sun')],
      { keepWeekly: 5, minKeep: 0 },
      new Date('2026-01-02T00:00:00Z'),
    );
    expect(decision.keep.map((k) => [k.backup.id, k.reasons[0]])).toEqual([
      ['thu', 'weekly 2026-W01'],
      ['sun', 'weekly 2025-W52'],
    ]);
    expect(ids(decision.prune)).toEqual(['mon']);
  });
});
