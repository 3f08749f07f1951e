import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InputError, InputErrors, SSH_INPUTS, parseJumpHost, readSshInputs } from '../src/index';

const savedEnv = { ...process.env };
let stdout: string[] = [];

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n';
const FP = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';

function setInputs(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
}

function errorsOf(read: () => unknown): InputError[] {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error instanceof InputErrors ? [...error.errors] : [error as InputError];
  }
  throw new Error('expected input errors, but reading succeeded');
}

const messages = (read: () => unknown) => errorsOf(read).map((error) => error.message);

beforeEach(() => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('readSshInputs', () => {
  it('rejects known-hosts with no usable line, naming the input and the expected form', () => {
    setInputs({ host: 'example.com', username: 'deploy', key: KEY, 'known-hosts': 'example.com ssh-ed25519 not-a-key\n# comment' });
    const [message, ...rest] = messages(readSshInputs);
    expect(rest).toEqual([]);
    expect(message).toContain('"known-hosts"');
    expect(message).toContain('ssh-ed25519 AAAA');
  });

  it('builds connect options with defaults', () => {
    setInputs({ host: 'example.com', username: 'deploy', key: KEY, fingerprint: FP });
    const options = readSshInputs();
    expect(options).toMatchObject({
      host: 'example.com',
      port: 22,
      username: 'deploy',
      privateKey: KEY,
      hostKey: { kind: 'fingerprint', fingerprints: [FP] },
      connectTimeoutSeconds: 20,
    });
    expect(options.jump).toBeUndefined();
    expect(options.password).toBeUndefined();
    expect(typeof options.log).toBe('function');
  });

  it('reads every input', () => {
    setInputs({
      host: '203.0.113.7',
      port: '2222',
      username: 'deploy',
      password: 'correct horse battery',
      'known-hosts': '[203.0.113.7]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICc/Fofd725vM2+oHiy9uYTuoxU0LqLuSsgBDlbIByvO',
      'jump-host': 'ops@bastion.example.com:2200',
      'jump-key': KEY,
      'connect-timeout': '1m',
    });
    expect(readSshInputs()).toMatchObject({
      host: '203.0.113.7',
      port: 2222,
      password: 'correct horse battery',
      hostKey: { kind: 'known-hosts', knownHosts: '[203.0.113.7]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICc/Fofd725vM2+oHiy9uYTuoxU0LqLuSsgBDlbIByvO' },
      jump: { host: 'bastion.example.com', port: 2200, username: 'ops', privateKey: KEY },
      connectTimeoutSeconds: 60,
    });
  });

  it('lets the jump host default to the target user and port 22', () => {
    setInputs({ host: 'app', username: 'deploy', key: KEY, fingerprint: FP, 'jump-host': 'bastion' });
    expect(readSshInputs().jump).toEqual({ host: 'bastion', port: 22, username: 'deploy' });
  });

  it('accepts several fingerprints separated by newlines, commas or spaces', () => {
    const other = 'SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';
    setInputs({ host: 'h', username: 'u', key: KEY, fingerprint: `${FP},\n${other} ${FP}=` });
    expect(readSshInputs().hostKey).toEqual({ kind: 'fingerprint', fingerprints: [FP, other, FP] });
  });

  it('repairs keys pasted with CRLF or literal \\n', () => {
    setInputs({ host: 'h', username: 'u', key: KEY.trim().replaceAll('\n', '\\n'), fingerprint: FP });
    expect(readSshInputs().privateKey).toBe(KEY);
    setInputs({ key: KEY.replaceAll('\n', '\r\n') });
    expect(readSshInputs().privateKey).toBe(KEY);
  });

  it('masks the key, passphrase, password and jump key', () => {
    setInputs({
      host: 'h',
      username: 'u',
      key: KEY,
      passphrase: 'open sesame',
      password: 'hunter2hunter2',
      'jump-host': 'b',
      'jump-key': KEY.replace('b3Bl', 'jUmP'),
      fingerprint: FP,
    });
    readSshInputs();
    const masks = stdout.filter((line) => line.startsWith('::add-mask::'));
    expect(masks).toContain('::add-mask::open sesame\n');
    expect(masks).toContain('::add-mask::hunter2hunter2\n');
    expect(masks).toContain('::add-mask::b3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n');
    expect(masks).toContain('::add-mask::jUmPbnNzaC1rZXktdjEAAAAABG5vbmU=\n');
  });

  it('needs a key or a password', () => {
    setInputs({ host: 'h', username: 'u', fingerprint: FP });
    expect(messages(readSshInputs)).toEqual(['Input "key" or "password" is required: give the private key (recommended) or the password for "username"']);
  });

  it('without any host key check, says how to get the fingerprint', () => {
    setInputs({ host: 'example.com', port: '2222', username: 'u', key: KEY });
    const [error, ...rest] = errorsOf(readSshInputs);
    expect(rest).toEqual([]);
    expect(error!.inputs).toEqual(['known-hosts', 'fingerprint', 'insecure-ignore-host-key']);
    expect(error!.message).toContain('ssh-keyscan -p 2222 example.com | ssh-keygen -lf -');
  });

  it('refuses two ways of checking the host key', () => {
    setInputs({ host: 'h', username: 'u', key: KEY, fingerprint: FP, 'insecure-ignore-host-key': 'true' });
    expect(messages(readSshInputs)).toEqual([
      'Inputs "fingerprint" and "insecure-ignore-host-key" are both set; use exactly one way to check the server\'s identity',
    ]);
  });

  it('treats insecure-ignore-host-key: false as not set', () => {
    setInputs({ host: 'h', username: 'u', key: KEY, fingerprint: FP, 'insecure-ignore-host-key': 'false' });
    expect(readSshInputs().hostKey.kind).toBe('fingerprint');
  });

  it('warns loudly when the host key is not checked', () => {
    setInputs({ host: 'h', username: 'u', key: KEY, 'insecure-ignore-host-key': 'TRUE' });
    expect(readSshInputs().hostKey).toEqual({ kind: 'insecure-ignore' });
    const warning = stdout.find((line) => line.startsWith('::warning::'));
    expect(warning).toContain('NOT checked');
    expect(warning).toContain('ssh-keyscan -p 22 h | ssh-keygen -lf -');
  });

  it('does not warn when the run fails on inputs anyway', () => {
    setInputs({ username: 'u', key: KEY, 'insecure-ignore-host-key': 'true' });
    errorsOf(readSshInputs);
    expect(stdout.some((line) => line.startsWith('::warning::'))).toBe(false);
  });

  it('reports every problem at once', () => {
    setInputs({
      port: '0',
      username: 'u',
      key: '/home/me/.ssh/id_ed25519',
      fingerprint: 'MD5:aa:bb',
      'insecure-ignore-host-key': 'yes',
      'jump-key': KEY,
      'connect-timeout': 'soon',
    });
    expect(messages(readSshInputs)).toEqual([
      'Input "host" is required; set it under "with:" in the workflow step',
      'Input "port" must be a TCP port number from 1 to 65535; got "0"',
      'Input "key" must be the private key\'s contents (-----BEGIN OPENSSH PRIVATE KEY----- …), not a file path or a public key (the value is secret, so it is not shown)',
      'Input "fingerprint" must be one or more SHA256 host key fingerprints like SHA256:+1Ye… (43 characters after the colon), the second field of `ssh-keygen -lf` output; got "MD5:aa:bb"',
      'Input "insecure-ignore-host-key" must be true or false; got "yes"',
      'Input "connect-timeout" must be a duration like 90, 90s or 2m (in seconds from 1 to 3600); got "soon"',
      'Input "jump-key" is set but "jump-host" is not; set "jump-host" to user@host:port of the jump host',
      'Inputs "fingerprint" and "insecure-ignore-host-key" are both set; use exactly one way to check the server\'s identity',
    ]);
  });

  it.each(['deploy@example.com', 'example.com:22', 'ssh://example.com', 'two words'])('refuses host %j with a hint', (host) => {
    setInputs({ host, username: 'u', key: KEY, fingerprint: FP });
    expect(messages(readSshInputs)).toEqual([
      `Input "host" must be a hostname or IP address (the user goes in "username", the port in "port"); got ${JSON.stringify(host)}`,
    ]);
  });

  it('accepts IPv6 addresses, with or without brackets', () => {
    setInputs({ host: '[2001:db8::1]', username: 'u', key: KEY, fingerprint: FP });
    expect(readSshInputs().host).toBe('2001:db8::1');
    setInputs({ host: '2001:db8::1' });
    expect(readSshInputs().host).toBe('2001:db8::1');
  });

  it('passes the passphrase only with a key', () => {
    setInputs({ host: 'h', username: 'u', password: 'pw-pw-pw', passphrase: 'x', fingerprint: FP });
    expect(messages(readSshInputs)).toEqual(['Input "passphrase" is set but "key" is not; the passphrase unlocks the private key given in "key"']);
  });
});

describe('parseJumpHost', () => {
  it.each([
    ['bastion', { host: 'bastion', port: 22 }],
    ['ops@bastion', { host: 'bastion', port: 22, username: 'ops' }],
    ['ops@bastion:2200', { host: 'bastion', port: 2200, username: 'ops' }],
    ['[2001:db8::2]:2200', { host: '2001:db8::2', port: 2200 }],
  ])('parses %s', (text, expected) => {
    expect(parseJumpHost(text)).toEqual(expected);
  });

  it.each(['', 'ops@', 'bastion:0', 'bastion:99999', 'a b', '2001:db8::2', '[nothex]:22', 'ssh://bastion'])('refuses %j', (text) => {
    expect(parseJumpHost(text)).toBeUndefined();
  });
});

describe('SSH_INPUTS', () => {
  it('defines each shared input once, with a description', () => {
    const names = SSH_INPUTS.map((input) => input.name);
    expect(names).toEqual([
      'host',
      'port',
      'username',
      'key',
      'passphrase',
      'password',
      'known-hosts',
      'fingerprint',
      'insecure-ignore-host-key',
      'jump-host',
      'jump-key',
      'connect-timeout',
    ]);
    for (const input of SSH_INPUTS) expect(input.description.length).toBeGreaterThan(10);
  });

  it('has defaults the reader agrees with', () => {
    setInputs({ host: 'h', username: 'u', key: KEY, fingerprint: FP });
    const fromCode = readSshInputs();
    const defaults = Object.fromEntries(SSH_INPUTS.flatMap((input) => ('default' in input ? [[input.name, input.default]] : [])));
    setInputs(defaults);
    expect(defaults).toEqual({ port: '22', 'insecure-ignore-host-key': 'false', 'connect-timeout': '20s' });
    expect({ ...readSshInputs(), log: undefined, liveOutput: undefined }).toEqual({ ...fromCode, log: undefined, liveOutput: undefined });
  });

  it('marks the credentials secret', () => {
    expect(SSH_INPUTS.filter((input) => 'secret' in input && input.secret).map((input) => input.name)).toEqual(['key', 'passphrase', 'password', 'jump-key']);
  });
});
