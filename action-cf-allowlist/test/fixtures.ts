import { SshConnection, type SshConnectOptions } from '@skiff/ssh';
export { CF_IPV4, CF_IPV6, JDCLOUD, answerFrom, cfBody, startFakeCloudflare, type CfAnswer, type FakeCloudflare } from '@skiff/testbed';
import type { AllowlistInputs } from '../src/inputs';

/** The action's inputs with the defaults these tests share; each test names only what it is about. */
export function allowlistInputs(required: Pick<AllowlistInputs, 'targets' | 'sourceUrl' | 'table'>, overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return {
    mode: { parallel: false },
    ports: [80, 443],
    extra: [],
    includeJdcloud: false,
    dockerPublished: true,
    backend: 'nftables',
    confirmTimeoutSeconds: 8,
    minIpv4: 10,
    minIpv6: 4,
    maxShrinkPercent: 25,
    allowShrink: false,
    dryRun: false,
    ...required,
    ...overrides,
  };
}

/** Whether a fresh SSH login still works: the test's view of a lockout. */
export async function sshWorks(target: SshConnectOptions): Promise<boolean> {
  try {
    const connection = await SshConnection.connect({ ...target, attempts: 1 });
    const result = await connection.run([['echo', 'hi']]);
    await connection.close();
    return result.stdout.trim() === 'hi';
  } catch {
    return false;
  }
}
