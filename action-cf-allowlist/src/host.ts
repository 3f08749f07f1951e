import { hostLabel } from '@skiff/action-kit';
import type { Executor } from '@skiff/shell';
import { SshConnection, type SshConnectOptions } from '@skiff/ssh';
import type { Backend, LiveState } from './backend';
import { notCoveredBy, type Cidr } from './cidr';
import { armCommands, cancelCommands, firedCommand, guardPaths, prepareDirCommand, revertScript } from './guard';

export interface ShrinkRule {
  maxShrinkPercent: number;
  allowShrink: boolean;
}

export interface HostPlan {
  live: LiveState;
  added: string[];
  removed: string[];
}

export interface Wanted {
  table: string;
  cf: { ipv4: readonly Cidr[]; ipv6: readonly Cidr[] };
  /** Every address entry the table/rules will hold (Cloudflare, extra, SSH). */
  managed: readonly Cidr[];
}

/** A drop this large in what the host allows is more likely a bad answer than Cloudflare retiring ranges. */
export function checkShrink(live: LiveState, wanted: Wanted, rule: ShrinkRule): void {
  if (!live.cf || rule.allowShrink) return;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const current = live.cf[family];
    if (current.length === 0) continue;
    const gone = notCoveredBy(current, [...wanted.cf[family]]).length;
    const percent = (gone / current.length) * 100;
    if (percent > rule.maxShrinkPercent) {
      throw new Error(
        `the new list would remove ${gone} of the ${current.length} ${family === 'ipv4' ? 'IPv4' : 'IPv6'} Cloudflare ranges live on the host ` +
          `(${percent.toFixed(0)}% > max-shrink-percent ${rule.maxShrinkPercent}); nothing was changed. If Cloudflare really retired them, rerun with allow-shrink: true`,
      );
    }
  }
}

/** Read-only: what is live, what would change, and whether the change is safe to make. */
export async function planHost(server: Executor, backend: Backend, wanted: Wanted, rule: ShrinkRule): Promise<HostPlan> {
  const live = await backend.inspect(server);
  checkShrink(live, wanted, rule);
  const texts = (cidrs: readonly Cidr[]) => [...new Set(cidrs.map((c) => c.text))];
  return {
    live,
    added: live.upToDate ? [] : texts(notCoveredBy([...wanted.managed], live.managed)),
    removed: live.upToDate ? [] : texts(notCoveredBy(live.managed, [...wanted.managed])),
  };
}

export class LockoutError extends Error {
  constructor(
    message: string,
    readonly reverted: boolean,
  ) {
    super(message);
    this.name = 'LockoutError';
  }
}

export interface ApplyOptions {
  confirmTimeoutSeconds: number;
  /** Where the guard keeps its files on the host (default /var/lib/skiff-cf). */
  stateDir?: string;
  log: (message: string) => void;
}

async function waitForRevert(server: Executor, paths: ReturnType<typeof guardPaths>, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const result = await server
      .run([firedCommand(paths)], { allowFailure: true, description: 'check whether the revert fired', timeoutSeconds: 10 })
      .catch(() => undefined);
    if (result === undefined) return false;
    if (result.code === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

/**
 * Stage, arm the revert, apply, then prove a NEW SSH login still works and the rules are the
 * wanted ones before cancelling the revert. Any failure after applying leaves the revert to
 * restore the last good rules.
 */
export async function applyWithGuard(server: Executor, target: SshConnectOptions, backend: Backend, table: string, options: ApplyOptions): Promise<void> {
  const paths = guardPaths(table, options.stateDir);
  const label = hostLabel(target);
  await server.run([prepareDirCommand(paths)], { description: 'prepare the state directory', timeoutSeconds: 30 });
  const restore = await backend.stage(server, paths);
  await server.upload(paths.revertScript, revertScript(paths, restore), { mode: 0o700, description: 'upload the revert script' });
  const armedAt = Date.now();
  await server.run(armCommands(table, paths, options.confirmTimeoutSeconds), {
    description: `arm the revert (${options.confirmTimeoutSeconds}s)`,
    timeoutSeconds: 30,
  });
  await backend.apply(server, paths);
  options.log(`${label}: applied; confirming with a new SSH connection`);

  const deadline = armedAt + options.confirmTimeoutSeconds * 1000;
  const probeTimeout = Math.max(2, Math.min(target.connectTimeoutSeconds ?? 20, Math.floor((deadline - Date.now()) / 1000) - 2));
  let probe: SshConnection | undefined;
  try {
    probe = await SshConnection.connect({ ...target, attempts: 1, connectTimeoutSeconds: probeTimeout });
    if (!(await backend.verify(probe))) {
      // Reachable but wrong: restore now rather than wait for the timer.
      await probe.run([['sh', paths.revertScript]], { description: 'revert now', timeoutSeconds: 60 });
      throw new LockoutError(`the rules read back after applying are not the rendered ones; the previous rules were restored`, true);
    }
    await probe.run(cancelCommands(table, paths), { description: 'confirm: cancel the revert', timeoutSeconds: 30 });
  } catch (error) {
    if (error instanceof LockoutError) throw error;
    const reason = (error as Error).message;
    options.log(`${label}: confirmation failed (${reason}); waiting for the lockout guard`);
    const fired = await waitForRevert(server, paths, deadline + 15_000);
    throw new LockoutError(
      fired
        ? `after the change a new SSH connection failed (${reason}); the lockout guard restored the previous rules after ${options.confirmTimeoutSeconds}s`
        : `after the change a new SSH connection failed (${reason}); the revert armed on the host restores the previous rules ${options.confirmTimeoutSeconds}s after applying, but it could not be confirmed over the old connection`,
      fired,
    );
  } finally {
    await probe?.close();
  }
}
