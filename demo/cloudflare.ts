import { CF_IPV4, CF_IPV6 } from '../action-cf-allowlist/test/fixtures';
import { startRecordingServer, type RecordingServer } from '@skiff/testbed';

/**
 * A stand-in for api.cloudflare.com's IP list (GET /client/v4/ips, the real answer format) on
 * 127.0.0.1: the real API is out of reach in the sandbox. It answers Cloudflare's published
 * ranges plus one "edge" range inside the namespace host's subnet, because the demo can only
 * send traffic from addresses it owns; that range plays the part of Cloudflare's edge.
 */

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
