import type { RunContext } from '../context';
import type { HostReport } from '../hosts-run';
import type { DeployInputs } from '../inputs';

/** strategy: coolify — Coolify deploys; we trigger, wait and gate. One report per Coolify resource. */
export async function deployCoolify(_inputs: DeployInputs, _ctx: RunContext): Promise<HostReport[]> {
  throw new Error('strategy: coolify is not available yet');
}
