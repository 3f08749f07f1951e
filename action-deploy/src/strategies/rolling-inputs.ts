import type { InputDefinition } from '@skiff/action-kit';
import type { StrategyName } from './strategy';

export const ROLLING_INPUTS = [] as const satisfies readonly InputDefinition[];

export interface RollingInputs {}

/** The rolling strategy's own inputs; undefined for other strategies. */
export function readRollingInputs(strategy: StrategyName): RollingInputs | undefined {
  return strategy === 'rolling' ? {} : undefined;
}
