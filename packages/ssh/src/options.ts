import type { LiveOutput } from '@skiff/shell';
/** How the server's host key is checked. Verification is the default; skipping it must be asked for. */
export type HostKeyPolicy =
  { kind: 'known-hosts'; knownHosts: string } | { kind: 'fingerprint'; fingerprints: readonly string[] } | { kind: 'insecure-ignore' };

export interface SshAuth {
  username: string;
  /** Private key contents (OpenSSH or PEM). */
  privateKey?: string;
  passphrase?: string;
  password?: string;
}

export interface JumpHost {
  host: string;
  port: number;
  username: string;
  /** The jump host's own key; when absent the target's credentials are used. */
  privateKey?: string;
  passphrase?: string;
}

export interface SshConnectOptions extends SshAuth {
  host: string;
  port: number;
  hostKey: HostKeyPolicy;
  jump?: JumpHost;
  /** Seconds to wait in all for TCP connect and SSH handshake, retries included. Default 20. */
  connectTimeoutSeconds?: number;
  /** Seconds between keepalive probes. Default 15. */
  keepaliveSeconds?: number;
  /** Attempts for connection-level failures (refused, reset, timed out), while connectTimeoutSeconds lasts. Auth and host-key failures never retry. Default 3. */
  attempts?: number;
  /** Called with progress and warning lines (e.g. core.info/core.warning). */
  log?: (level: 'info' | 'warning', message: string) => void;
  /** Where a run with `live` shows its output as it comes; without it, output is only collected. */
  liveOutput?: LiveOutput;
}

export type { LiveOutput };
