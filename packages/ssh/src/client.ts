import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';

/**
 * ssh2's Client, connected, with the calls this package makes as promises. An 'error' event
 * that nobody hears would crash the action, so errors after the connection is up are recorded
 * in `lostWith` and reported by the next call of whoever uses the connection.
 */
export class SshClient {
  lostWith?: Error;
  closed = false;

  private constructor(readonly connection: Client) {
    connection.on('error', (error: Error) => {
      this.lostWith ??= error;
    });
    connection.on('close', () => {
      this.closed = true;
    });
  }

  /**
   * Resolves once the server accepted us. With a password, keyboard-interactive is offered too
   * and answered with it (servers that disable the "password" method often ask that way).
   */
  static connect(config: ConnectConfig): Promise<SshClient> {
    return new Promise((resolve, reject) => {
      const connection = new Client();
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        connection.end();
        reject(error);
      };
      connection.on('error', fail);
      // A server that closes before the handshake ends says nothing more than this.
      connection.on('close', () => fail(Object.assign(new Error('No response from server'), { code: 'ETIMEDOUT' })));
      const { password } = config;
      if (password !== undefined)
        connection.on('keyboard-interactive', (_name, _instructions, _language, prompts, finish) =>
          finish(prompts.map((prompt) => (/password/i.test(prompt.prompt) ? password : ''))),
        );
      connection.on('ready', () => {
        if (settled) return;
        settled = true;
        connection.removeListener('error', fail);
        resolve(new SshClient(connection));
      });
      connection.connect({ ...config, ...(password !== undefined ? { tryKeyboard: true } : {}) });
      // ssh2 leaves Nagle's algorithm on, so the handshake's small packets and every small command
      // wait for delayed ACKs (measured on loopback: 213 ms vs 50 ms to connect, 92 ms vs 4 ms a round trip).
      connection.setNoDelay(true);
    });
  }

  forwardOut(sourceAddress: string, sourcePort: number, destinationAddress: string, destinationPort: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.connection.forwardOut(sourceAddress, sourcePort, destinationAddress, destinationPort, (error, channel) =>
        error ? reject(error) : resolve(channel),
      );
    });
  }

  sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => {
      this.connection.sftp((error, sftp) => (error ? reject(error) : resolve(sftp)));
    });
  }

  end(): void {
    this.connection.end();
  }
}
