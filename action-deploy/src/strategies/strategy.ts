import type { Deployer } from '../deploy';
import type { Outcome } from '../summary';

export const STRATEGIES = ['recreate', 'rolling', 'swarm', 'systemd', 'coolify'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** What one host's deploy or rollback tells the run; timing and mode are added by hosts-run. */
export type StoryResult = Omit<Outcome, 'durationSeconds' | 'mode'>;

/**
 * How releases reach one SSH host. Every strategy keeps the same release history, lock, audit
 * log and health gate; they differ in how a release is switched on and how it is undone.
 * (coolify has no SSH host; main runs it instead of the per-host loop.)
 */
export interface HostStrategy {
  /** Find docker compose and check the engine before taking the lock (a systemd host may have no Docker). */
  usesDocker: boolean;
  deploy(d: Deployer): Promise<StoryResult>;
  rollback(d: Deployer, wanted: string, reason?: string): Promise<StoryResult>;
}
