import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { sh } from './proc';

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
  port: number;
  /** What the next requests get (a JSON value, or raw text). */
  serve(body: unknown): void;
  requests: number;
  close(): Promise<void>;
}

/**
 * A stand-in for api.cloudflare.com on 127.0.0.1 (the real API is out of reach from tests); with
 * `tls`, over HTTPS with that certificate, for code that only takes Cloudflare's https address.
 */
export async function startFakeCloudflare(initial: unknown, tls?: { certFile: string; keyFile: string }): Promise<FakeCloudflare> {
  let body = initial;
  const state = { requests: 0 };
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    state.requests++;
    if (request.url !== '/client/v4/ips') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"success":false,"errors":[{"code":7000,"message":"No route for that URI"}]}');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const server: Server = tls ? createHttpsServer({ cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/client/v4/ips`,
    port,
    serve(next) {
      body = next;
    },
    get requests() {
      return state.requests;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
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
