import type { InputDefinition } from '@skiff/action-kit';
import type { Command } from '@skiff/shell';
import type { TakenBackup } from '../backup-before-deploy-inputs';
import type { Deployer } from '../deploy';
import type { GateReport } from '../health-gate';
import type { PrunePlan, ServerState } from '../release-history';
import type { Outcome } from '../host-outcome';

import type { StrategyName } from '../deploy-inputs';

export type { StrategyName } from '../deploy-inputs';

/** Groups of shared inputs a strategy can say it has no use for (inputs.ts names their members). */
export type SharedInputGroup = 'compose' | 'ssh';

/** What one host's deploy or rollback tells the run; timing and mode are added by each-host.ts. */
export type StoryResult = Omit<Outcome, 'durationSeconds' | 'mode'>;

/** What the story needs of a release, whatever else a strategy keeps with it. */
export interface StoryRelease {
  readonly id: string;
  /** Service → image as pinned; empty where there are no images (systemd). */
  images: Record<string, string>;
}

/** What switching a release on ended with. */
export interface Switched {
  /** Every gate run, in order; the last one decides. */
  gates: { label: string; gate: GateReport }[];
  gate: GateReport;
  /**
   * Set when the release failed before anything of the running one was stopped (a rolling
   * deploy's new containers failed their gate and were removed): the running release kept
   * serving, so there is nothing to restore. The diagnostics were gathered before the removal.
   */
  kept?: { diagnostics: string };
  /** The images the switch found running (Swarm pins what it resolved), when they differ from the release's own list. */
  images?: Record<string, string>;
  /**
   * Set when the platform itself already put some services back (Swarm's update rollback):
   * `why` completes "Release <id> failed: …", `to` names what they went back to when there is
   * no Skiff release to name.
   */
  undone?: { why: string; to: string };
}

/** One named step between upload and switch; a failure stops the deploy with nothing switched. */
export interface PrepareStep {
  what: string;
  run(): Promise<void>;
}

/**
 * How releases reach one SSH host. The story (story.ts) is the same for every strategy —
 * upload → prepare steps → switch and gate → mark current, audit, prune; on failure
 * diagnostics and the rollback through the same switch and gate — and decides every status,
 * audit entry and message; a strategy supplies only its steps. A strategy object is made for
 * one host's run (each-host.ts asks the registry for a fresh one), so it may keep what its
 * `check` learnt about the server. coolify has no SSH host and is not one of these.
 */
export interface HostStrategy<R extends StoryRelease = StoryRelease> {
  /** Find docker compose and check the engine before taking the lock (a systemd host may have no Docker). */
  readonly usesDocker: boolean;
  /** Refuses (RefusedBeforeChange) a server this strategy cannot use, before anything changes. A dry run records it and goes on. */
  check(d: Deployer): Promise<void>;
  /** What the log calls the thing deployed, after "Release <id>" (e.g. " as stack shop"). */
  subject?(d: Deployer): string;
  /** The release a failed deploy returns to; by default the current one if it passed its gate. */
  previousOf?(state: ServerState): string | undefined;
  /** Creates the release on the server with everything it needs to be switched on. */
  upload(d: Deployer, id: string): Promise<R>;
  /** Named steps before the switch, in order (pull, build, install-command, pre-deploy…); a backup step adds what it took to `backups`. */
  prepare(d: Deployer, release: R, previous: string | undefined, backups: TakenBackup[]): PrepareStep[];
  /** After a prepare step failed: puts back what upload changed beside the running release (the env link). */
  afterEarlyFailure?(d: Deployer, previous: string | undefined): Promise<void>;
  /** Switches the release on and runs the health gate. A throw counts as a failed gate. */
  switchOn(d: Deployer, release: R, running: string | undefined): Promise<Switched>;
  /** A kept release, as it was deployed. */
  load(d: Deployer, id: string): Promise<R>;
  /** After a new release passed its gate: what it must remember for a later rollback to it (Swarm's resolved digests). */
  recordPassed?(d: Deployer, release: R, switched: Switched): Promise<void>;
  /** The commands that make a release that passed its gate the one a failed deploy returns to (run with the audit line). */
  markCurrent(d: Deployer, release: R): Command[];
  /** What a person needs to see why the release failed, gathered before a rollback changes anything. */
  diagnose(d: Deployer, release: R, switched: Switched): Promise<string>;
  /** What stays for inspection when a failed release is not rolled back: "…, so <noRollback>" / "…, so <noPrevious>". */
  left: { noRollback: string; noPrevious: string };
  /** Deletes pruned releases and what only they used. */
  removeCommands(d: Deployer, plan: PrunePlan): Command[];
  /** A dry run of `rollback:` names what would happen (the target depends on what the server keeps). */
  plannedRollback(d: Deployer, wanted: string): string;
}

/** What the action needs to know of a strategy besides its steps. */
export interface StrategyEntry<S> {
  /** Inputs only this strategy reads, as action.yml declares them; set with another strategy, they are an error that names them. */
  readonly inputs: readonly InputDefinition[];
  /** Groups of shared inputs it has no use for (an error names each one set). */
  readonly ignores: readonly SharedInputGroup[];
  /** Single shared inputs it has no use for, beyond the groups. */
  readonly ignoresInputs: readonly string[];
  /**
   * Reads its own inputs into its settings when it is the chosen strategy; called with every
   * other strategy too, it returns undefined (or refuses its inputs set there, naming them).
   */
  read(strategy: StrategyName): S | undefined;
  /** Makes the strategy for one host's run, with its settings; absent for coolify, which deploys through Coolify's API instead. */
  readonly host?: (settings: S) => HostStrategy;
}
