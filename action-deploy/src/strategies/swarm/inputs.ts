import type { InputDefinition } from '@skiff/action-kit';

export const SWARM_INPUTS = [] as const satisfies readonly InputDefinition[];

// Swarm has no inputs of its own yet; the type keeps its place in the registry of strategies.
export type SwarmInputs = Record<string, never>;

/** The swarm strategy's own inputs; undefined for other strategies. */
export function readSwarmInputs(strategy: string): SwarmInputs | undefined {
  return strategy === 'swarm' ? {} : undefined;
}
