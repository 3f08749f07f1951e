import { afterAll, beforeAll, describe, it } from 'vitest';
import { ensureBaseImages, sh, sshdConnectOptions, startSshd, type SshdServer } from '@skiff/testbed';
import { SshConnection } from '@skiff/ssh';
import { expectEventsWakeTheGate } from './container-events-check';

/** The gate's watch on the machine's engine (Docker 20.10, the old one); modern.int runs the same on Docker 28. */
describe("the health gate's watch of container events, Docker 20.10", () => {
  let server: SshdServer;
  let connection: SshConnection;
  beforeAll(async () => {
    await ensureBaseImages();
    server = await startSshd();
    connection = await SshConnection.connect(sshdConnectOptions(server));
  }, 120_000);
  afterAll(async () => {
    await connection?.close();
    await server?.stop();
  });

  it('a health change and an exit of a watched container wake the gate, another container does not, nothing is left running', async () => {
    await expectEventsWakeTheGate(connection, (args) => sh('docker', [...args]), `skiffevents${process.pid}`);
  }, 120_000);
});
