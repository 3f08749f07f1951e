import { describe, expect, it } from 'vitest';
import { parseState } from '../src/release-history';
import { rollbackTarget } from '../src/rollback';

const a = '20260101T030000Z-1a2b3c4-0001';
const b = '20260102T030000Z-9f8e7d6-0002';
const a2 = '20260103T030000Z-1a2b3c4-0003';
const failed = '20260104T030000Z-5555555-0004';
const state = () =>
  parseState(
    [
      `current releases/${a2}`,
      ...[a, b, a2, failed].map((id) => `release ${id}`),
      ...[a, b, a2].map((id) => `deployed /srv/app/releases/${id}`),
      `sha /srv/app/releases/${a} 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b`,
      `sha /srv/app/releases/${a2} 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b`,
      `sha /srv/app/releases/${failed} 5555555d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b`,
    ].join('\n'),
  );

describe('rollback: a git SHA picks the newest kept release of that commit', () => {
  it('a prefix or the full SHA, matched against meta.json; the newest of two deploys of one commit wins', () => {
    expect(rollbackTarget(state(), '1a2b3c4')).toBe(a2);
    expect(rollbackTarget(state(), '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b')).toBe(a2);
    // b has no full SHA on record (an older release): the 7 digits of its id still match.
    expect(rollbackTarget(state(), '9f8e7d6')).toBe(b);
    expect(rollbackTarget(state(), '9f8e7d6c0ffee00')).toBe(b);
  });

  it('a commit whose only release failed its gate, or an unknown one, lists the kept releases (id, commit, date, current) newest first', () => {
    for (const wanted of ['5555555', 'abcdef0']) {
      let message = '';
      try {
        rollbackTarget(state(), wanted);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toContain(`no kept, successfully deployed release was made from commit ${wanted}`);
      expect(message).toContain(
        `\n  ${a2} (commit 1a2b3c4d5e6f, 2026-01-03 03:00 UTC, current)\n  ${b} (commit 9f8e7d6, 2026-01-02 03:00 UTC)\n  ${a} (commit 1a2b3c4d5e6f, 2026-01-01 03:00 UTC)`,
      );
      expect(message).not.toContain(failed);
    }
  });

  it('previous and release ids work as before', () => {
    expect(rollbackTarget(state(), 'previous')).toBe(b);
    expect(rollbackTarget(state(), a)).toBe(a);
    expect(() => rollbackTarget(state(), failed)).toThrow(/is not a kept, successfully deployed release/);
  });
});
