import type { InputDefinition } from '@skiff/action-kit';
import type { StrategyName } from './strategy';

export const SWARM_INPUTS = [] as const satisfies readonly InputDefinition[];

export interface SwarmInputs {}

/** The swarm strategy's own inputs; undefined for other strategies. */
export function readSwarmInputs(strategy: StrategyName): SwarmInputs | undefined {
  return strategy === 'swarm' ? {} : undefined;
}
