import { expect } from 'vitest';
import { parseSources, type BackupOptions, type Source } from '../src';

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

/**
 * Sets process variables as a runner step would have them (the artifact stand-in's, RUNNER_TEMP:
 * @actions/artifact reads them at each call); returns what puts the previous values back.
 */
export function setProcessEnv(values: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, process.env[key]]));
  Object.assign(process.env, values);
  return () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}
