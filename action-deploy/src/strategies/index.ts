import { deployNewRelease, rollbackTo } from '../story';
import { rollingStrategy } from './rolling';
import type { HostStrategy, StrategyName } from './strategy';
import { swarmStrategy } from './swarm';
import { systemdStrategy } from './systemd';

export { STRATEGIES, type HostStrategy, type StoryResult, type StrategyName } from './strategy';

const recreate: HostStrategy = { usesDocker: true, deploy: deployNewRelease, rollback: rollbackTo };

export function hostStrategy(name: Exclude<StrategyName, 'coolify'>): HostStrategy {
  switch (name) {
    case 'recreate':
      return recreate;
    case 'rolling':
      return rollingStrategy;
    case 'swarm':
      return swarmStrategy;
    case 'systemd':
      return systemdStrategy;
  }
}
