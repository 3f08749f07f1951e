import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request as an internet service (GitHub's API, a chat webhook) would have received it. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. /repos/acme/app/deployments. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface RecordedResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RecordingServer {
  /** http://127.0.0.1:PORT, or https:// with `tls` (no trailing slash). */
  url: string;
  port: number;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/**
 * A local HTTP server on 127.0.0.1 standing in for a service the tests cannot reach: it records
 * every request and answers with what `respond` returns (JSON bodies), in the service's own format.
 */
export async function startRecordingServer(
  respond: (request: RecordedRequest) => RecordedResponse,
  options: { tls?: { certFile: string; keyFile: string } } = {},
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body === '' ? undefined : JSON.parse(body);
      } catch {
        json = undefined;
      }
      const request: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json };
      requests.push(request);
      let answer: RecordedResponse;
      try {
        answer = respond(request);
      } catch (error) {
        answer = { status: 500, body: { message: (error as Error).message } };
      }
      const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json; charset=utf-8', ...answer.headers });
      res.end(text);
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: await readFile(options.tls.certFile), key: await readFile(options.tls.keyFile) }, handler)
    : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
