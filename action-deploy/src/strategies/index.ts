import type { StrategyName, HostStrategy } from './strategy';
import { recreateStrategy } from './recreate';
import { rollingStrategy } from './rolling';
import { swarmStrategy } from './swarm';
import { systemdStrategy } from './systemd';

export { STRATEGIES, type HostStrategy, type StoryResult, type StrategyName } from './strategy';

/**
 * Every strategy that deploys over SSH, by name: each entry makes a fresh strategy for one
 * host's run. A new strategy is one folder of steps (see strategy.ts) and one line here.
 */
const HOST_STRATEGIES: Record<Exclude<StrategyName, 'coolify'>, () => HostStrategy> = {
  recreate: recreateStrategy,
  rolling: rollingStrategy,
  swarm: swarmStrategy,
  systemd: systemdStrategy,
};

export function hostStrategy(name: Exclude<StrategyName, 'coolify'>): HostStrategy {
  return HOST_STRATEGIES[name]();
}
