import * as core from '@actions/core';

/**
 * healthchecks.io-style pings: `<url>/start`, then `<url>` or `<url>/fail`. A ping that cannot be
 * delivered is a warning, never a failed backup: the monitor exists to notice missing runs.
 */
export async function ping(url: string | undefined, event: 'start' | 'success' | 'fail', body?: string): Promise<void> {
  if (!url) return;
  const target = event === 'success' ? url : `${url}/${event}`;
  try {
    const response = await fetch(target, { method: 'POST', body: body?.slice(0, 10_000) ?? '', signal: AbortSignal.timeout(10_000) });
    if (!response.ok) core.warning(`healthcheck ping ${event} answered HTTP ${response.status}`);
  } catch (error) {
    core.warning(`healthcheck ping ${event} failed: ${(error as Error).message}`);
  }
}
