import type { HostStrategy } from './strategy';

// Being built (issue 5); until then the strategy refuses before anything on the server changes.
const notYet = async (): Promise<never> => {
  throw new Error('strategy: swarm is not available yet');
};

export const swarmStrategy: HostStrategy = { usesDocker: true, deploy: notYet, rollback: notYet };
