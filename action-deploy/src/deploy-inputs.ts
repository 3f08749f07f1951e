import type { RunMode } from '@skiff/action-kit';
import type { StatusRange } from '@skiff/health';
import type { SshConnectOptions } from '@skiff/ssh';
import type { BackupBeforeDeployInputs } from './backup-before-deploy-inputs';
import type { ServerBuild } from './server-build';
import type { ShippedFile } from './shipped-files';
import type { CoolifyInputs } from './strategies/coolify/inputs';
import type { RollingInputs } from './strategies/rolling/inputs';
import type { SwarmInputs } from './strategies/swarm/inputs';
import type { SystemdInputs } from './strategies/systemd/inputs';

/*
 * What inputs.ts reads, as the rest of the action sees it. Apart from the reader, so that the
 * strategies (which the reader's registry names) can use these types without an import cycle.
 */

export interface ComposeFileInput {
  /** As given, relative to the workspace. */
  path: string;
  /** File name in the release directory. */
  name: string;
  content: string;
}

export interface HealthInputs {
  urls: readonly string[];
  from: 'runner' | 'host';
  status: StatusRange;
  body?: string;
  successes: number;
  intervalSeconds: number;
  timeoutSeconds: number;
  command?: string;
}

export interface RegistryLogin {
  registry: string;
  username: string;
  password: string;
}

export interface GithubDeploymentInputs {
  environment: string;
  url?: string;
  token: string;
}

/**
 * Every strategy by name, with what its own inputs read into. A new strategy is a line here and
 * one in the registry (strategies/index.ts), which the compiler holds to the same names.
 */
export interface StrategySettings {
  recreate: Record<string, never>;
  rolling: RollingInputs;
  swarm: SwarmInputs;
  systemd: SystemdInputs;
  coolify: CoolifyInputs;
}

export type StrategyName = keyof StrategySettings;

/** The strategy input and its own settings; narrowing on `name` types `settings`. */
export type ChosenStrategy<K extends StrategyName = StrategyName> = { [P in K]: { name: P; settings: StrategySettings[P] } }[K];

export interface DeployInputs {
  strategy: ChosenStrategy;
  /** One per host of the `host` input, in order; empty with strategy: coolify. */
  targets: readonly SshConnectOptions[];
  mode: RunMode;
  allOrNothing: boolean;
  deployment?: GithubDeploymentInputs;
  /** Each gets its own message, in its own format. */
  notifyWebhooks?: string[];
  projectDir: string;
  projectName: string;
  composeFiles: readonly ComposeFileInput[];
  /** Services with `build:` and no `images:` line, built on the server from their shipped context. */
  serverBuilds: readonly ServerBuild[];
  /** Every service of the compose files (pull names them when some are built on the server). */
  composeServices: readonly string[];
  /** `files`: configuration files shipped with each release. */
  shippedFiles?: readonly ShippedFile[];
  envFile?: string;
  images: Readonly<Record<string, string>>;
  preDeploy?: string;
  /** backup-before-deploy: verified dumps on the server before pre-deploy. */
  backupBeforeDeploy?: BackupBeforeDeployInputs;
  /** A login for the pull only (a throwaway Docker config on the server). */
  registryLogin?: RegistryLogin;
  keepReleases: number;
  pullTimeoutSeconds: number;
  preDeployTimeoutSeconds: number;
  lockTimeoutSeconds: number;
  lockTtlSeconds: number;
  health: HealthInputs;
  rollbackOnFailure: boolean;
  /** `previous` or a release id: re-deploy a kept release instead of the compose files. */
  rollback?: string;
  sudo: boolean;
  dryRun: boolean;
}
