export { SshConnection, SshConnectionError, readableOf } from './connection';
export type { ExecOptions, LocalForward } from './connection';
export {
  HostKeyError,
  verifyHostKey,
  parseKnownHosts,
  entryMatchesHost,
  knownHostsName,
  sha256Fingerprint,
  keyTypeOf,
  preferredHostKeyAlgorithms,
} from './host-key';
export type { KnownHostEntry } from './host-key';
export type { HostKeyPolicy, SshAuth, JumpHost, SshConnectOptions, LiveOutput } from './options';
export { bufferReclaimer, reclaimNow } from './memory';
export type { ReclaimKind } from './memory';
export { publicKeyOf } from './keys';
