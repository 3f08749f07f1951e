import { startRecordingServer, type RecordingServer } from '@skiff/testbed';

/**
 * A stand-in for api.cloudflare.com's IP list (GET /client/v4/ips, the real answer format) on
 * 127.0.0.1: the real API is out of reach in the sandbox. It answers Cloudflare's published
 * ranges plus one "edge" range inside the namespace host's subnet, because the demo can only
 * send traffic from addresses it owns; that range plays the part of Cloudflare's edge.
 */

/** Cloudflare's published ranges (https://www.cloudflare.com/ips/). */
const CF_IPV4 = [
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
const CF_IPV6 = ['2400:cb00::/32', '2606:4700::/32', '2803:f800::/32', '2405:b500::/32', '2405:8100::/32', '2a06:98c0::/29', '2c0f:f248::/32'];

export interface CloudflareStandIn {
  /** What the action's `source-url` input gets. */
  url: string;
  server: RecordingServer;
}

export async function startCloudflareStandIn(edgeRange: string): Promise<CloudflareStandIn> {
  const server = await startRecordingServer((request) =>
    request.path === '/client/v4/ips'
      ? {
          status: 200,
          body: { result: { ipv4_cidrs: [...CF_IPV4, edgeRange], ipv6_cidrs: CF_IPV6, etag: 'skiffdemo-etag-1' }, success: true, errors: [], messages: [] },
        }
      : { status: 404, body: { success: false, errors: [{ code: 7000, message: 'No route for that URI' }] } },
  );
  return { url: `${server.url}/client/v4/ips`, server };
}
