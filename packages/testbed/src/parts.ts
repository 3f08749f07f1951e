import { sh } from './proc';

/**
 * A test-bed part that is not installed is always an error, never a skip: the README's test
 * command provisions everything, so a missing part means setup is broken.
 */
export async function requirePart(name: string, probe: readonly string[]): Promise<void> {
  try {
    await sh(probe[0]!, probe.slice(1), { timeoutMs: 30_000 });
  } catch (error) {
    throw new Error(
      `test bed: ${name} is missing or broken (${probe.join(' ')} failed: ${(error as Error).message.trim()}). ` +
        'Run `bash scripts/setup-testbed.sh` as root (npm test does this first).',
    );
  }
}
