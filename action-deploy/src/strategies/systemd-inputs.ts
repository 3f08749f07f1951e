import type { InputDefinition } from '@skiff/action-kit';
import type { StrategyName } from './strategy';

export const SYSTEMD_INPUTS = [] as const satisfies readonly InputDefinition[];

export interface SystemdInputs {}

/** The systemd strategy's own inputs; undefined for other strategies. */
export function readSystemdInputs(strategy: StrategyName): SystemdInputs | undefined {
  return strategy === 'systemd' ? {} : undefined;
}
