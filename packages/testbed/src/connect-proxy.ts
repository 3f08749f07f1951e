import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:PORT, for HTTPS_PROXY (with NODE_USE_ENV_PROXY=1 on Node 24). */
  url: string;
  /** Every CONNECT target asked for, in order (`discord.com:443`). */
  asked: string[];
  stop(): Promise<void>;
}

/**
 * An HTTP CONNECT proxy on 127.0.0.1 that tunnels the internet names a test routes (e.g.
 * `discord.com:443` → a local TLS stand-in's port) to loopback and refuses every other target
 * with 403: code under test keeps the service's real address, and nothing leaves this machine.
 */
export async function startConnectProxy(routes: Readonly<Record<string, number>>): Promise<ConnectProxy> {
  const asked: string[] = [];
  // Tunnels are no longer HTTP connections: closeAllConnections does not end them.
  const tunnels = new Set<{ destroy(): void }>();
  const server = createServer((_request, response) => response.writeHead(405).end('CONNECT only\n'));
  server.on('connect', (request, socket, head) => {
    const target = request.url ?? '';
    asked.push(target);
    const port = routes[target];
    if (port === undefined) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    tunnels.add(socket);
    socket.on('close', () => tunnels.delete(socket));
    const upstream = connect(port, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    asked,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of tunnels) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
