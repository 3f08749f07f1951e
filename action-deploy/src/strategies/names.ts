/** Every value of the strategy input. */
export const STRATEGIES = ['recreate', 'rolling', 'swarm', 'systemd', 'coolify'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** Groups of shared inputs a strategy can say it has no use for (inputs.ts names their members). */
export type SharedInputGroup = 'compose' | 'ssh';
