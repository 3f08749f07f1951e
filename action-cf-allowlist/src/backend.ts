import type { Command, Executor } from '@skiff/shell';
import type { Cidr } from './cidr';
import type { GuardPaths } from './guard';

/** What a backend found on a host, read-only. */
export interface LiveState {
  /** No difference from what would be applied: nothing is written. */
  upToDate: boolean;
  /** Live Cloudflare ranges (for the shrink guard); undefined when the host has none of ours yet. */
  cf?: { ipv4: Cidr[]; ipv6: Cidr[] };
  /** Every live address entry this action manages (Cloudflare, extra and SSH), for the diff. */
  managed: Cidr[];
}

/** A firewall this action can drive. All changes go through stage → apply; the guard wraps apply. */
export interface Backend {
  readonly name: 'nftables' | 'ufw';
  inspect(server: Executor): Promise<LiveState>;
  /** Uploads and checks the new rules and saves the live ones; returns the commands that restore them. */
  stage(server: Executor, paths: GuardPaths): Promise<Command[]>;
  apply(server: Executor, paths: GuardPaths): Promise<void>;
  /** Run over the NEW connection: the rules on the host are the wanted ones. */
  verify(server: Executor): Promise<boolean>;
}
