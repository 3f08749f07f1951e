import { InputCollector, InputError, getDuration, getList, invalidInput, type InputDefinition } from '@skiff/action-kit';

export const ROLLING_INPUTS = [
  {
    name: 'rolling-services',
    description:
      'With strategy: rolling, the Compose services to update without downtime, one per line or comma separated. Default: every service that publishes no fixed host port, sets no container_name, does not use the host network and mounts no named volume or host directory read-write. Every other service is updated by `compose up` (recreated if it changed), with a warning naming it and why.',
    required: false,
  },
  {
    name: 'rolling-drain',
    description:
      'With strategy: rolling, how long the old containers keep running after the new ones are healthy and answer every check, so the reverse proxy has picked up the new ones; counted from the first round of the final streak of the gate (it overlaps the remaining rounds of the gate). The old ones then get their stop_grace_period to finish requests in flight.',
    required: false,
    default: '2s',
  },
] as const satisfies readonly InputDefinition[];

export interface RollingInputs {
  /** Services named in rolling-services; undefined: every service that can roll. */
  services?: readonly string[];
  drainSeconds: number;
}

// Compose's rule for service names.
const SERVICE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function readServices(): readonly string[] | undefined {
  const services = getList('rolling-services', { split: 'any' });
  for (const service of services ?? []) {
    if (!SERVICE.test(service))
      throw invalidInput('rolling-services', 'Compose service names (letters, digits, ".", "_" and "-"), one per line or comma separated', service);
  }
  return services;
}

/** The rolling strategy's own inputs; undefined for other strategies. */
export function readRollingInputs(strategy: string): RollingInputs | undefined {
  if (strategy !== 'rolling') {
    // rolling-drain has a default, so only a set rolling-services shows a workflow that meant to roll.
    if (getList('rolling-services') !== undefined) {
      throw new InputError(
        ['rolling-services', 'strategy'],
        `Input "rolling-services" is set but strategy is ${strategy}; it only applies with strategy: rolling`,
      );
    }
    return undefined;
  }
  const c = new InputCollector();
  const services = c.read(readServices);
  const drainSeconds = c.read(() => getDuration('rolling-drain', { default: 2, min: 0, max: 600 }));
  c.finish();
  return { ...(services === undefined ? {} : { services }), drainSeconds: drainSeconds! };
}
