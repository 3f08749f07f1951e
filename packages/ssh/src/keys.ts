import { utils, type ParsedKey } from 'ssh2';

/** The public half of a private key, as authorized_keys writes it (`type base64`), or undefined if it cannot be read (or is encrypted and no passphrase fits). */
export function publicKeyOf(privateKey: string, passphrase?: string): string | undefined {
  const parsed: unknown = utils.parseKey(privateKey, passphrase);
  // A file with several keys parses to a list: the first is the one ssh would offer.
  const key = (Array.isArray(parsed) ? (parsed as unknown[])[0] : parsed) as ParsedKey | Error | undefined;
  if (!key || key instanceof Error || !key.isPrivateKey()) return undefined;
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}
