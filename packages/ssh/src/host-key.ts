import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { HostKeyPolicy } from './options';

/** One usable line of an OpenSSH known_hosts file. */
export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  /** Plain patterns (comma list, wildcards, `!negation`, `[host]:port`), or a hashed name. */
  hosts: { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };
  keyType: string;
  keyBlob: Buffer;
}

export class HostKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostKeyError';
  }
}

/** `SHA256:…` exactly as `ssh-keygen -lf` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const length = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** The name OpenSSH looks up: bare host on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    const [hostField, keyType, keyBase64] = fields;
    if (!hostField || !keyType || !keyBase64) continue;
    const keyBlob = Buffer.from(keyBase64, 'base64');
    if (keyBlob.length === 0 || keyTypeOf(keyBlob) !== keyType) continue;
    const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(hostField);
    const hosts: KnownHostEntry['hosts'] = hashed
      ? { kind: 'hashed', salt: Buffer.from(hashed[1]!, 'base64'), hash: Buffer.from(hashed[2]!, 'base64') }
      : { kind: 'patterns', patterns: hostField.split(',') };
    entries.push({ ...(marker ? { marker } : {}), hosts, keyType, keyBlob });
  }
  return entries;
}

function wildcardMatches(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${[...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, 'i');
  return regex.test(name);
}

/** OpenSSH semantics: a negated pattern that matches vetoes the line, otherwise any positive match wins. */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (entry.hosts.kind === 'hashed') {
    const digest = createHmac('sha1', entry.hosts.salt).update(name).digest();
    return digest.length === entry.hosts.hash.length && timingSafeEqual(digest, entry.hosts.hash);
  }
  let matched = false;
  for (const pattern of entry.hosts.patterns) {
    const negated = pattern.startsWith('!');
    if (wildcardMatches(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** Host key algorithms ssh2 offers by default, strongest first. */
const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

function algorithmsForKeyType(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}

/**
 * Like OpenSSH, ask first for the key types we hold pins for: a server with both an ed25519
 * and an RSA key must not be rejected just because only its RSA key was pinned.
 */
export function preferredHostKeyAlgorithms(policy: HostKeyPolicy, host: string, port: number): string[] | undefined {
  if (policy.kind !== 'known-hosts') return undefined;
  const pinnedTypes = parseKnownHosts(policy.knownHosts)
    .filter((entry) => !entry.marker && entryMatchesHost(entry, host, port))
    .flatMap((entry) => algorithmsForKeyType(entry.keyType));
  const preferred = DEFAULT_HOST_KEY_ALGORITHMS.filter((algorithm) => pinnedTypes.includes(algorithm));
  if (preferred.length === 0) return undefined;
  return [...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((algorithm) => !preferred.includes(algorithm))];
}

function howToVerify(host: string, port: number): string {
  return `Verify it out of band (for example on the server's console, or with \`ssh-keyscan -p ${port} ${host} | ssh-keygen -lf -\` from a network you trust) and pin it with the \`fingerprint\` or \`known-hosts\` input.`;
}

/**
 * Decides whether the key a server presented is the one pinned. Returns nothing when it is;
 * throws a HostKeyError that shows the presented fingerprint when it is not.
 */
export function verifyHostKey(policy: HostKeyPolicy, host: string, port: number, keyBlob: Buffer): void {
  if (policy.kind === 'insecure-ignore') return;
  const presented = sha256Fingerprint(keyBlob);
  const keyType = keyTypeOf(keyBlob);
  const where = knownHostsName(host, port);

  if (policy.kind === 'fingerprint') {
    const pins = policy.fingerprints.map((fingerprint) => fingerprint.trim().replace(/=+$/, ''));
    if (pins.includes(presented)) return;
    throw new HostKeyError(
      `Host key verification failed for ${where}: the server presented ${keyType} key ${presented}, which matches none of the pinned fingerprints (${pins.join(', ')}). ` +
        `If the server was rebuilt, update the pin; otherwise someone may be intercepting the connection. ${howToVerify(host, port)}`,
    );
  }

  const entries = parseKnownHosts(policy.knownHosts).filter((entry) => entryMatchesHost(entry, host, port));
  if (entries.some((entry) => entry.marker === '@revoked' && entry.keyBlob.equals(keyBlob))) {
    throw new HostKeyError(`Host key verification failed for ${where}: its ${keyType} key ${presented} is marked @revoked in known-hosts.`);
  }
  const pinned = entries.filter((entry) => !entry.marker);
  if (pinned.some((entry) => entry.keyBlob.equals(keyBlob))) return;
  if (pinned.length === 0) {
    throw new HostKeyError(
      `Host key verification failed: known-hosts has no entry for ${where} (entries for a non-standard port must be written [host]:port). ` +
        `The server presented ${keyType} key ${presented}. ${howToVerify(host, port)}`,
    );
  }
  throw new HostKeyError(
    `Host key verification failed for ${where}: the server presented ${keyType} key ${presented}, but known-hosts pins ` +
      `${pinned.map((entry) => `${entry.keyType} ${sha256Fingerprint(entry.keyBlob)}`).join(', ')}. ` +
      `If the server was rebuilt, update known-hosts; otherwise someone may be intercepting the connection. ${howToVerify(host, port)}`,
  );
}
