import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh } from '@skiff/testbed';

/**
 * strategy: rolling fixtures for tests and the bench: nginx in front of the app in the same
 * Compose project, and a bounded request loop through it.
 *
 * nginx resolves `web` through Docker's DNS (127.0.0.11) at most 1 s old, so it sees new
 * containers and forgets stopped ones; a connection refused or reset by a container that is
 * stopping (or crashed) is retried on the next address. That is the setup the README asks
 * of nginx users — nothing here is gentler than production.
 */
const NGINX_CONF = `worker_processes 1;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  resolver 127.0.0.11 valid=1s ipv6=off;
  resolver_timeout 2s;
  server {
    listen 80;
    location / {
      set $app http://web:8080;
      proxy_pass $app;
      proxy_connect_timeout 250ms;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 4;
    }
  }
}
`;

/** nginx from the test bed's Debian image (nginx-light), configured as above. Local only: the compose file says pull_policy: never. */
export async function buildProxy(tag: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rollingskiff-proxy-'));
  try {
    await writeFile(join(dir, 'nginx.conf'), NGINX_CONF);
    await writeFile(
      join(dir, 'Dockerfile'),
      ['FROM skiff-testbed/debian:bookworm', 'COPY nginx.conf /etc/nginx/nginx.conf', 'STOPSIGNAL SIGQUIT', 'CMD ["nginx", "-g", "daemon off;"]', ''].join(
        '\n',
      ),
    );
    await sh('docker', ['build', '-q', '-t', tag, dir], { timeoutMs: 120_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The proxy on a fixed loopback port (so it cannot roll) and the app behind it, `replicas` of it. */
/** `bind`: where the proxy's port is published (a namespace server's is reached on its own address). */
export function rollingCompose(appImage: string, proxyImage: string, replicas: number, bind = '127.0.0.1'): string {
  return [
    'services:',
    '  proxy:',
    `    image: ${proxyImage}`,
    '    pull_policy: never',
    '    ports:',
    `      - "${bind}:\${PROXY_PORT}:80"`,
    '  web:',
    `    image: ${appImage}`,
    '    stop_grace_period: 5s',
    '    deploy:',
    `      replicas: ${replicas}`,
    '',
  ].join('\n');
}

export interface LoopResult {
  total: number;
  /** Requests sent before the deploy ended (the rest came after it, up to the minimum). */
  during: number;
  failed: number;
  /** The first few failures, for the assertion message. */
  failures: string[];
  /** Bodies in order with repeats collapsed, e.g. ['version=v1', 'version=v2']. */
  versions: string[];
  ms: number;
}

/**
 * GETs through the proxy, `workers` at a time (each one after the other), until `until` settles
 * and at least `min` were made — never more than `max` (the loop is bounded whatever happens). A
 * request fails when it errors, times out (5 s), or answers anything but 200 with a `version=` body.
 * `pauseMs` between a worker's requests bounds the rate: nginx opens a new upstream connection per
 * request, and ~28,000 in a minute exhaust the ephemeral ports, which would look like failures.
 */
export async function requestLoop(
  url: string,
  options: { min: number; max: number; until: Promise<unknown>; workers?: number; pauseMs?: number },
): Promise<LoopResult> {
  let finished = false;
  const result: LoopResult = { total: 0, during: 0, failed: 0, failures: [], versions: [], ms: 0 };
  void options.until
    .finally(() => {
      finished = true;
      result.during = result.total;
    })
    .catch(() => undefined);
  const start = performance.now();
  const worker = async () => {
    while (result.total < options.max && !(finished && result.total >= options.min)) {
      const number = ++result.total;
      let problem: string | undefined;
      let body = '';
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
        body = (await response.text()).trim();
        if (response.status !== 200 || !body.startsWith('version=')) problem = `HTTP ${response.status}: ${body.slice(0, 80)}`;
      } catch (error) {
        problem = (error as Error).message;
      }
      if (problem) {
        result.failed++;
        if (result.failures.length < 5) result.failures.push(`#${number}: ${problem}`);
      } else if (result.versions.at(-1) !== body) result.versions.push(body);
      // A breath between requests keeps the loop from taking a whole core from the deploy it watches.
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 1));
    }
  };
  await Promise.all(Array.from({ length: options.workers ?? 1 }, worker));
  result.ms = performance.now() - start;
  return result;
}
