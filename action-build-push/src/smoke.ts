import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as core from '@actions/core';
import {
  containerLogsCommand,
  containerPortCommand,
  containerStateCommand,
  execInContainerCommand,
  imageHealthcheckCommand,
  parseHostPort,
  removeContainerCommand,
  runContainerCommand,
} from './commands';
import type { SmokeOptions } from './inputs';
import { runCommand } from './run-command';

// TODO: move the wait loop to packages/health once it exists, so action-deploy's health gate and this share it.

const POLL_MS = 500;
export const LOG_LINES = 100;

export class SmokeTestError extends Error {
  constructor(
    message: string,
    /** The container's last log lines. */
    readonly logs: string,
  ) {
    super(message);
    this.name = 'SmokeTestError';
  }
}

interface ContainerState {
  Running?: boolean;
  ExitCode?: number;
  Health?: { Status?: string };
}

export interface SmokeResult {
  /** What passed, for the summary. */
  passed: string;
  seconds: number;
}

async function hasHealthcheck(image: string): Promise<boolean> {
  const out = (await runCommand(imageHealthcheckCommand(image), { quiet: true })).stdout.trim();
  if (out === '' || out === 'null') return false;
  const test = (JSON.parse(out) as { Test?: string[] }).Test;
  return Array.isArray(test) && test.length > 0 && test[0] !== 'NONE';
}

async function urlAnswers(hostPort: number, path: string): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${hostPort}${path}`, { signal: AbortSignal.timeout(2000), redirect: 'manual' });
    await response.arrayBuffer();
    return response.status >= 200 && response.status < 300;
  } catch {
    return false;
  }
}

/**
 * Runs the image and waits, bounded by the timeout, until smoke-url answers 2xx, smoke-command
 * exits 0, or (when neither is set) its HEALTHCHECK reports healthy. The container is always removed.
 */
export async function smokeTest(image: string, options: SmokeOptions, platform?: string): Promise<SmokeResult> {
  const useHealthcheck = options.url === undefined && options.command === undefined;
  if (useHealthcheck && !(await hasHealthcheck(image))) {
    throw new SmokeTestError('The smoke test has nothing to check: the image has no HEALTHCHECK and neither "smoke-url" nor "smoke-command" is set', '');
  }
  const name = `skiff-smoke-${randomBytes(6).toString('hex')}`;
  const start = Date.now();
  const deadline = start + options.timeoutSeconds * 1000;
  core.info(`Smoke test: running ${image} as ${name} for up to ${options.timeoutSeconds}s`);
  await runCommand(runContainerCommand(name, image, { ...(options.url ? { publishPort: options.url.port } : {}), ...(platform ? { platform } : {}) }), {
    quiet: true,
  });
  try {
    let hostPort: number | undefined;
    let lastProblem = 'nothing answered yet';
    while (Date.now() < deadline) {
      const state = JSON.parse((await runCommand(containerStateCommand(name), { quiet: true })).stdout) as ContainerState;
      if (!state.Running) throw await failure(name, `the container exited with code ${state.ExitCode} during the smoke test`);
      const health = state.Health?.Status;
      if (health === 'unhealthy') throw await failure(name, "the container's HEALTHCHECK reports unhealthy");

      if (useHealthcheck) {
        if (health === 'healthy') return { passed: 'HEALTHCHECK reported healthy', seconds: (Date.now() - start) / 1000 };
        lastProblem = `HEALTHCHECK status is ${health ?? 'unknown'}`;
      } else {
        let ok = true;
        if (options.url) {
          hostPort ??= parseHostPort((await runCommand(containerPortCommand(name, options.url.port), { quiet: true, allowFailure: true })).stdout);
          if (hostPort === undefined || !(await urlAnswers(hostPort, options.url.path))) {
            ok = false;
            lastProblem = `:${options.url.port}${options.url.path} did not answer 2xx`;
          }
        }
        if (ok && options.command) {
          const result = await runCommand(execInContainerCommand(name, options.command), { quiet: true, allowFailure: true });
          if (result.code !== 0) {
            ok = false;
            lastProblem = `smoke-command exited ${result.code}`;
          }
        }
        if (ok) {
          const passed = [options.url && `:${options.url.port}${options.url.path} answered 2xx`, options.command && 'smoke-command exited 0']
            .filter(Boolean)
            .join(' and ');
          return { passed, seconds: (Date.now() - start) / 1000 };
        }
      }
      await sleep(Math.max(0, Math.min(POLL_MS, deadline - Date.now())));
    }
    throw await failure(name, `the container did not pass within ${options.timeoutSeconds}s (${lastProblem})`);
  } finally {
    await runCommand(removeContainerCommand(name), { quiet: true, allowFailure: true });
  }
}

async function failure(name: string, why: string): Promise<SmokeTestError> {
  const logs = await runCommand(containerLogsCommand(name, LOG_LINES), { quiet: true, allowFailure: true });
  // docker logs replays the container's stdout and stderr on its own two streams; keep both.
  const text = [logs.stdout, logs.stderr]
    .filter((s) => s.trim() !== '')
    .join('\n')
    .trimEnd();
  return new SmokeTestError(`Smoke test failed: ${why}; nothing was pushed`, text);
}
