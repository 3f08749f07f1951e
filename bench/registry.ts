import type { Benchmark } from './harness';
import { bundleColdStart } from './bundle-cold-start';
import { sshRoundTrip } from './ssh-round-trip';
import { backupToS3 } from './backup';
import { cfAllowlist } from './cf-allowlist';
import { buildPush } from './build-push';
import { deployBench } from './deploy-compose';
import { deployHostsBench } from './deploy-hosts';
import { deployRollingBench } from './deploy-rolling';

/** Every benchmark `npm run bench` knows, in the order they run: add a new one's file here. */
export const BENCHMARKS: readonly Benchmark[] = [
  sshRoundTrip,
  bundleColdStart,
  buildPush,
  cfAllowlist,
  backupToS3,
  deployBench,
  deployHostsBench,
  deployRollingBench,
];
