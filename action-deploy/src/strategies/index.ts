import type { InputDefinition } from '@skiff/action-kit';
import type { ChosenStrategy, StrategyName, StrategySettings } from '../deploy-inputs';
import type { HostStrategy, StrategyEntry } from './strategy';
import { coolify } from './coolify';
import { recreate } from './recreate';
import { rolling } from './rolling';
import { swarm } from './swarm';
import { systemd } from './systemd';

export type { HostStrategy, StoryResult, StrategyName } from './strategy';

/**
 * Every strategy, by name: a new one is a folder under strategies/ (its steps and entry in
 * index.ts, its inputs in inputs.ts), one line here and its settings' line in deploy-inputs.ts
 * (StrategySettings); the compiler refuses either line without the other.
 */
export const STRATEGY_REGISTRY: { [P in StrategyName]: StrategyEntry<StrategySettings[P]> } = { recreate, rolling, swarm, systemd, coolify };

/** The values of the strategy input. */
export const STRATEGIES = Object.keys(STRATEGY_REGISTRY) as StrategyName[];

/** The chosen strategy's own inputs, read by its registry entry. */
export function readChosenStrategy<K extends StrategyName>(name: K): ChosenStrategy<K> {
  const entry: StrategyEntry<StrategySettings[K]> = STRATEGY_REGISTRY[name];
  const settings = entry.read(name);
  if (settings === undefined) throw new Error(`strategy: ${name} read no settings of its own`);
  return { name, settings };
}

/** A fresh strategy for one host's run, made with its settings; coolify deploys through its API instead. */
export function hostStrategy<K extends StrategyName>(chosen: ChosenStrategy<K>): HostStrategy {
  const entry: StrategyEntry<StrategySettings[K]> = STRATEGY_REGISTRY[chosen.name];
  if (!entry.host) throw new Error(`strategy: ${chosen.name} does not deploy over SSH`);
  return entry.host(chosen.settings);
}

/** Every strategy's own inputs, for action.yml. */
export function strategyInputs(): InputDefinition[] {
  return Object.values(STRATEGY_REGISTRY).flatMap((entry) => [...entry.inputs]);
}
