import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostKeyError, entryMatchesHost, keyTypeOf, parseKnownHosts, preferredHostKeyAlgorithms, sha256Fingerprint, verifyHostKey } from '../src';

const dir = mkdtempSync(join(tmpdir(), 'skiff-hostkey-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function makeKey(name: string, type: 'ed25519' | 'rsa'): { line: string; blob: Buffer; fingerprint: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-f', path]);
  const line = readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  // The reference fingerprint comes from OpenSSH itself, not from our own code.
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${path}.pub`], { encoding: 'utf8' }).split(/\s+/)[1]!;
  return { line, blob: Buffer.from(line.split(' ')[1]!, 'base64'), fingerprint };
}

const server = makeKey('server', 'ed25519');
const serverRsa = makeKey('server-rsa', 'rsa');
const other = makeKey('other', 'ed25519');

function hashed(line: string): string {
  const file = join(dir, `kh-${Math.random()}`);
  writeFileSync(file, `${line}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
  return readFileSync(file, 'utf8');
}

describe('fingerprints and key types', () => {
  it('matches ssh-keygen -lf exactly', () => {
    expect(sha256Fingerprint(server.blob)).toBe(server.fingerprint);
    expect(sha256Fingerprint(serverRsa.blob)).toBe(serverRsa.fingerprint);
  });
  it('reads the key type from the blob', () => {
    expect(keyTypeOf(server.blob)).toBe('ssh-ed25519');
    expect(keyTypeOf(serverRsa.blob)).toBe('ssh-rsa');
  });
});

describe('known_hosts matching', () => {
  const match = (hostField: string, host: string, port: number) => {
    const [entry] = parseKnownHosts(`${hostField} ${server.line}`);
    return entryMatchesHost(entry!, host, port);
  };
  it('plain names match only port 22; [host]:port matches that port', () => {
    expect(match('example.com', 'example.com', 22)).toBe(true);
    expect(match('example.com', 'example.com', 2222)).toBe(false);
    expect(match('[example.com]:2222', 'example.com', 2222)).toBe(true);
    expect(match('[example.com]:2222', 'example.com', 22)).toBe(false);
  });
  it('comma lists, wildcards and negation follow OpenSSH', () => {
    expect(match('a.example.com,1.2.3.4', '1.2.3.4', 22)).toBe(true);
    expect(match('*.example.com', 'web.example.com', 22)).toBe(true);
    expect(match('*.example.com,!db.example.com', 'db.example.com', 22)).toBe(false);
    expect(match('web?.example.com', 'web1.example.com', 22)).toBe(true);
    expect(match('web?.example.com', 'web12.example.com', 22)).toBe(false);
    expect(match('EXAMPLE.com', 'example.COM', 22)).toBe(true);
  });
  it('hashed entries written by ssh-keygen -H match the right name only', () => {
    const [plainPort22] = parseKnownHosts(hashed(`example.com ${server.line}`));
    expect(plainPort22!.hosts.kind).toBe('hashed');
    expect(entryMatchesHost(plainPort22!, 'example.com', 22)).toBe(true);
    expect(entryMatchesHost(plainPort22!, 'example.org', 22)).toBe(false);
    const [bracketed] = parseKnownHosts(hashed(`[10.0.0.5]:2222 ${server.line}`));
    expect(entryMatchesHost(bracketed!, '10.0.0.5', 2222)).toBe(true);
    expect(entryMatchesHost(bracketed!, '10.0.0.5', 22)).toBe(false);
  });
  it('skips comments, blanks and malformed lines', () => {
    const entries = parseKnownHosts(
      `# comment\n\nhost-only\nhost ssh-ed25519 !!!notbase64\nhost ssh-rsa ${server.line.split(' ')[1]}\nhost ${server.line} comment here\n`,
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]!.keyType).toBe('ssh-ed25519');
  });
});

describe('verifyHostKey', () => {
  it('accepts the pinned key and rejects another, showing the presented fingerprint and how to verify', () => {
    const policy = { kind: 'known-hosts' as const, knownHosts: `[h]:2200 ${server.line}\n` };
    expect(() => verifyHostKey(policy, 'h', 2200, server.blob)).not.toThrow();
    let error: unknown;
    try {
      verifyHostKey(policy, 'h', 2200, other.blob);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(HostKeyError);
    const message = (error as Error).message;
    expect(message).toContain(other.fingerprint);
    expect(message).toContain(server.fingerprint);
    expect(message).toContain('ssh-keyscan -p 2200 h | ssh-keygen -lf -');
  });
  it('says when known-hosts has no entry for the host and port', () => {
    const policy = { kind: 'known-hosts' as const, knownHosts: `h ${server.line}\n` };
    expect(() => verifyHostKey(policy, 'h', 2200, server.blob)).toThrow(/no entry for \[h\]:2200/);
  });
  it('honours @revoked', () => {
    const policy = { kind: 'known-hosts' as const, knownHosts: `h ${server.line}\n@revoked h ${server.line}\n` };
    expect(() => verifyHostKey(policy, 'h', 22, server.blob)).toThrow(/revoked/);
  });
  it('accepts any of several fingerprints, with or without base64 padding', () => {
    const policy = { kind: 'fingerprint' as const, fingerprints: [other.fingerprint, `${server.fingerprint}=`] };
    expect(() => verifyHostKey(policy, 'h', 22, server.blob)).not.toThrow();
    expect(() => verifyHostKey({ kind: 'fingerprint', fingerprints: [other.fingerprint] }, 'h', 22, server.blob)).toThrow(server.fingerprint);
  });
  it('insecure-ignore accepts anything (the connection layer warns)', () => {
    expect(() => verifyHostKey({ kind: 'insecure-ignore' }, 'h', 22, other.blob)).not.toThrow();
  });
});

describe('preferredHostKeyAlgorithms', () => {
  it('asks first for the pinned key types, like OpenSSH', () => {
    const algorithms = preferredHostKeyAlgorithms({ kind: 'known-hosts', knownHosts: `[h]:2200 ${serverRsa.line}\n` }, 'h', 2200);
    expect(algorithms?.slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(algorithms).toContain('ssh-ed25519');
  });
  it('leaves the default order when nothing is pinned for the host or pins are fingerprints', () => {
    expect(preferredHostKeyAlgorithms({ kind: 'known-hosts', knownHosts: `other ${serverRsa.line}\n` }, 'h', 22)).toBeUndefined();
    expect(preferredHostKeyAlgorithms({ kind: 'fingerprint', fingerprints: [server.fingerprint] }, 'h', 22)).toBeUndefined();
  });
});
