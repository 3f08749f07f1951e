import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh } from '@skiff/testbed';

/** Test and bench fixtures: tiny app images and the compose file that runs them. */

export type AppKind = 'ok' | 'crash' | 'http500' | 'unhealthy';

/**
 * A tiny app image FROM the test bed's busybox: httpd on :8080 serving `version=<label>` with a
 * HEALTHCHECK by wget (and a shell that stops on TERM, as real apps do, so `docker stop` is quick);
 * `crash` exits at once; `http500` is healthy by HEALTHCHECK but its
 * /health answers 500 (busybox httpd runs /cgi-bin scripts); `unhealthy` serves but its
 * HEALTHCHECK always fails (a backend whose database never comes up).
 * `finishInFlightSeconds`: on TERM the app does what a real server does: it stops accepting (the
 * listening httpd goes; a new connection is refused, which the proxy retries elsewhere) and
 * finishes the requests it has (httpd's per-connection children) for that long before the
 * container exits. Busybox httpd alone drops them at once; only sleeping while it still accepted
 * let a request arrive just before the exit and be cut (1 in ~2,700 under load, now and then).
 */
export async function buildApp(tag: string, kind: AppKind, label: string, options: { finishInFlightSeconds?: number } = {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiffdeploy-image-'));
  try {
    await mkdir(join(dir, 'www/cgi-bin'), { recursive: true });
    await writeFile(join(dir, 'www/index.html'), `version=${label}\n`);
    const status = kind === 'http500' ? '500 Internal Server Error' : '200 OK';
    await writeFile(join(dir, 'www/cgi-bin/health'), `#!/bin/sh\nprintf 'Status: ${status}\\r\\nContent-Type: text/plain\\r\\n\\r\\nversion=${label}\\n'\n`, {
      mode: 0o755,
    });
    const cmd =
      kind === 'crash'
        ? `CMD ["sh", "-c", "echo crashing version=${label} token=$SECRET_TOKEN; exit 1"]`
        : `CMD ["sh", "-c", "trap '${options.finishInFlightSeconds ? `kill $listener; sleep ${options.finishInFlightSeconds}; ` : ''}exit 0' TERM; httpd -f -p 8080 -h /www & listener=$!; wait"]`;
    await writeFile(
      join(dir, 'Dockerfile'),
      [
        'FROM skiff-testbed/busybox:1',
        'COPY www /www',
        'RUN chmod 755 /www/cgi-bin/health',
        `LABEL skiffdeploy.version=${label}`,
        kind === 'unhealthy'
          ? 'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD exit 1'
          : 'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1',
        cmd,
        '',
      ].join('\n'),
    );
    await sh('docker', ['build', '-q', '-t', tag, dir], { timeoutMs: 120_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The compose file the tests deploy: one web service, port and secret from the env file. */
export function composeFile(registry: string): string {
  return [
    'services:',
    '  web:',
    `    image: ${registry}/skiffdeploy-app:v1`,
    '    ports:',
    '      - "127.0.0.1:${WEB_PORT}:8080"',
    '    environment:',
    '      SECRET_TOKEN: ${SECRET_TOKEN}',
    '',
  ].join('\n');
}

/** Removes every container and network of a compose project by its label (no compose file needed). */
export async function removeProject(project: string): Promise<void> {
  const ids = (await sh('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).split('\n').filter(Boolean);
  // -v: the anonymous volumes of images that declare VOLUME go with their containers, as with `compose down -v`.
  if (ids.length > 0) await sh('docker', ['rm', '-f', '-v', ...ids]);
  const networks = (await sh('docker', ['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`])).split('\n').filter(Boolean);
  if (networks.length > 0) await sh('docker', ['network', 'rm', ...networks]).catch(() => '');
  const volumes = (await sh('docker', ['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`])).split('\n').filter(Boolean);
  if (volumes.length > 0) await sh('docker', ['volume', 'rm', ...volumes]).catch(() => '');
}
