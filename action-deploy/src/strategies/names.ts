/** Every value of the strategy input. */
export const STRATEGIES = ['recreate', 'rolling', 'swarm', 'systemd', 'coolify'] as const;
export type StrategyName = (typeof STRATEGIES)[number];
