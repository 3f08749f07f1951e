import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SshConnection, type SshConnectOptions } from '@skiff/ssh';
import { sh } from '@skiff/testbed';
import type { AllowlistInputs } from '../src/inputs';

/** Cloudflare's published ranges (https://www.cloudflare.com/ips/, as the API answers them). */
export const CF_IPV4 = [
  '173.245.48.0/20',
  '103.21.244.0/22',
  '103.22.200.0/22',
  '103.31.4.0/22',
  '141.101.64.0/18',
  '108.162.192.0/18',
  '190.93.240.0/20',
  '188.114.96.0/20',
  '197.234.240.0/22',
  '198.41.128.0/17',
  '162.158.0.0/15',
  '104.16.0.0/13',
  '104.24.0.0/14',
  '172.64.0.0/13',
  '131.0.72.0/22',
];
export const CF_IPV6 = ['2400:cb00::/32', '2606:4700::/32', '2803:f800::/32', '2405:b500::/32', '2405:8100::/32', '2a06:98c0::/29', '2c0f:f248::/32'];
export const JDCLOUD = ['1.12.32.0/23', '1.12.34.0/24', '2402:db40:5100::/40'];

export interface CfAnswer {
  ipv4: string[];
  ipv6: string[];
  jdcloud?: string[];
  etag?: string;
  success?: boolean;
  errors?: unknown[];
}

/** The API's answer shape: GET /client/v4/ips. */
export function cfBody(answer: CfAnswer): unknown {
  return {
    result: { ipv4_cidrs: answer.ipv4, ipv6_cidrs: answer.ipv6, jdcloud_cidrs: answer.jdcloud ?? JDCLOUD, etag: answer.etag ?? 'etag-test-1' },
    success: answer.success ?? true,
    errors: answer.errors ?? [],
    messages: [],
  };
}

export interface FakeCloudflare {
  url: string;
  /** What the next requests get (a JSON value, or raw text). */
  serve(body: unknown): void;
  requests: number;
  close(): Promise<void>;
}

/** A stand-in for api.cloudflare.com on 127.0.0.1 (the real API is out of reach from tests). */
export async function startFakeCloudflare(initial: unknown): Promise<FakeCloudflare> {
  let body = initial;
  const state = { requests: 0 };
  const server: Server = createServer((request, response) => {
    state.requests++;
    if (request.url !== '/client/v4/ips') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"success":false,"errors":[{"code":7000,"message":"No route for that URI"}]}');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/client/v4/ips`,
    serve(next) {
      body = next;
    },
    get requests() {
      return state.requests;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The action's inputs with the defaults these tests share; each test names only what it is about. */
export function allowlistInputs(required: Pick<AllowlistInputs, 'targets' | 'sourceUrl' | 'table'>, overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return {
    mode: { parallel: false },
    ports: [80, 443],
    extra: [],
    includeJdcloud: false,
    dockerPublished: true,
    backend: 'nftables',
    confirmTimeoutSeconds: 8,
    minIpv4: 10,
    minIpv6: 4,
    maxShrinkPercent: 25,
    allowShrink: false,
    dryRun: false,
    ...required,
    ...overrides,
  };
}

/** What a web server answers a request from `source`, or '' when the firewall refuses or drops it. */
export async function answerFrom(source: string, url: string, family: '-4' | '-6' | undefined = undefined): Promise<string> {
  try {
    return await sh('curl', [...(family ? [family] : []), '-s', '--interface', source, '--connect-timeout', '2', '--max-time', '4', url]);
  } catch {
    return '';
  }
}

/** Whether a fresh SSH login still works: the test's view of a lockout. */
export async function sshWorks(target: SshConnectOptions): Promise<boolean> {
  try {
    const connection = await SshConnection.connect({ ...target, attempts: 1 });
    const result = await connection.run([['echo', 'hi']]);
    await connection.close();
    return result.stdout.trim() === 'hi';
  } catch {
    return false;
  }
}
