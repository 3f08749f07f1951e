import type { InputDefinition } from '@skiff/action-kit';
import type { StrategyName } from './names';
import type { HostStrategy, StrategyEntry } from './strategy';
import { coolify } from './coolify';
import { recreate } from './recreate';
import { rolling } from './rolling';
import { swarm } from './swarm';
import { systemd } from './systemd';

export { STRATEGIES, type StrategyName } from './names';
export type { HostStrategy, StoryResult } from './strategy';

/**
 * Every strategy, by name: a new one is a folder under strategies/ (its steps in index.ts, its
 * inputs in inputs.ts), its name in names.ts and one line here; the compiler refuses either of
 * the last two without the other.
 */
export const STRATEGY_REGISTRY: Record<StrategyName, StrategyEntry> = { recreate, rolling, swarm, systemd, coolify };

export function hostStrategy(name: Exclude<StrategyName, 'coolify'>): HostStrategy {
  const make = STRATEGY_REGISTRY[name].host;
  if (!make) throw new Error(`strategy: ${name} does not deploy over SSH`);
  return make();
}

/** Every strategy's own inputs, for action.yml. */
export function strategyInputs(): InputDefinition[] {
  return Object.values(STRATEGY_REGISTRY).flatMap((entry) => [...entry.inputs]);
}
