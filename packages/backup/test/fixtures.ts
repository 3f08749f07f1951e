import { expect } from 'vitest';
import { parseSources, type BackupOptions, type Source } from '../src/index';

/** The one source a YAML snippet describes, which must parse without problems. */
export function oneSource(yaml: string): Source {
  const { sources, problems } = parseSources(yaml);
  expect(problems).toEqual([]);
  return sources[0]!;
}

/** The options most backup tests use, on the test's own clock; each call may override any of them. */
export function backupOptions(now: () => Date): (overrides?: Partial<BackupOptions>) => BackupOptions {
  return (overrides = {}) => ({ minSize: 1024, maxShrinkPercent: 50, encryptRecipients: [], retention: { keepDays: 30, minKeep: 3 }, now, ...overrides });
}
