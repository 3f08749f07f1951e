import type { InputDefinition } from '@skiff/action-kit';
import type { StrategyName } from './strategy';

export const COOLIFY_INPUTS = [] as const satisfies readonly InputDefinition[];

export interface CoolifyInputs {}

/** The coolify strategy's own inputs; undefined for other strategies. */
export function readCoolifyInputs(strategy: StrategyName): CoolifyInputs | undefined {
  return strategy === 'coolify' ? {} : undefined;
}
