import * as core from '@actions/core';
import { getOctokit } from '@actions/github';
import type { RunContext } from './run-context';
import type { GithubDeploymentInputs } from './deploy-inputs';

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'error';

export interface GithubDeployment {
  id: number;
  /** Posts a status; failures are warnings (the servers are what matters, GitHub's record is a view of them). */
  status(state: DeploymentState, description: string): Promise<void>;
}

/**
 * Records the run as a GitHub Deployment of the commit to `environment`: created before any server
 * changes, `in_progress` at once, then `success` or `failure` with the run's log URL.
 *
 * `required_contexts: []`: GitHub would otherwise refuse (409) while this very workflow's checks
 * are still pending on the commit. `auto_merge: false`: deploy the SHA, never a merge of it.
 * `auto_inactive: true` on the final status: GitHub then marks the environment's earlier successful
 * deployments `inactive` itself when this one succeeds — and leaves the earlier one active when this
 * one fails or rolled back, which is the truth: the previous release is what runs.
 */
export async function startDeployment(
  inputs: GithubDeploymentInputs,
  ctx: RunContext,
  env: NodeJS.ProcessEnv = process.env,
): Promise<GithubDeployment | undefined> {
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
  const ref = ctx.sha || ctx.ref;
  if (!owner || !repo || !ref) {
    core.warning('environment is set, but GITHUB_REPOSITORY or GITHUB_SHA is missing: no GitHub Deployment is recorded');
    return undefined;
  }
  // No request log: Octokit's default logger is quiet at info; warnings name only the endpoint.
  const octokit = getOctokit(inputs.token, { log: { debug: () => {}, info: () => {}, warn: core.warning, error: core.warning } });
  let id: number;
  try {
    const created = await octokit.rest.repos.createDeployment({
      owner,
      repo,
      ref,
      environment: inputs.environment,
      auto_merge: false,
      required_contexts: [],
      description: `Skiff deploy of ${ref.slice(0, 12)} by ${ctx.actor}`.slice(0, 140),
      payload: { release: ctx.releaseId ?? '' },
    });
    if (!('id' in created.data)) throw new Error(`GitHub did not create a deployment: ${created.data.message ?? `HTTP ${created.status}`}`);
    id = created.data.id;
  } catch (error) {
    core.warning(`Could not create a GitHub Deployment for ${inputs.environment}: ${(error as Error).message}. The deploy goes on without it.`);
    return undefined;
  }
  core.info(`GitHub Deployment ${id} to ${inputs.environment}`);
  const deployment: GithubDeployment = {
    id,
    async status(state, description) {
      try {
        await octokit.rest.repos.createDeploymentStatus({
          owner,
          repo,
          deployment_id: id,
          state,
          ...(ctx.runUrl ? { log_url: ctx.runUrl } : {}),
          ...(inputs.url ? { environment_url: inputs.url } : {}),
          description: description.slice(0, 140),
          ...(state === 'in_progress' ? {} : { auto_inactive: true }),
        });
      } catch (error) {
        core.warning(`Could not set GitHub Deployment ${id} to ${state}: ${(error as Error).message}`);
      }
    },
  };
  await deployment.status('in_progress', 'Deploying');
  return deployment;
}
