import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './proc';

/**
 * A CA and a server certificate it signed, for 127.0.0.1 and localhost (and `names`, e.g. an
 * internet service's host names that a test routes to a local stand-in), as a managed database
 * presents them: the client is given the CA (`ca.crt` in `dir`), the server keeps its key.
 */
export async function makeServerCertificate(
  dir: string,
  names: readonly string[] = [],
): Promise<{ caPem: string; caFile: string; certFile: string; keyFile: string }> {
  const p = (name: string) => join(dir, name);
  const openssl = (args: string[]) => sh('openssl', args, { timeoutMs: 60_000 });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Skiff test CA', '-keyout', p('ca.key'), '-out', p('ca.crt')]);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr')]);
  await writeFile(p('san.ext'), `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...names.map((name) => `DNS:${name}`)].join(',')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('san.ext'),
    '-out',
    p('server.crt'),
  ]);
  return { caPem: await readFile(p('ca.crt'), 'utf8'), caFile: p('ca.crt'), certFile: p('server.crt'), keyFile: p('server.key') };
}
