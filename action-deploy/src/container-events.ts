import { PassThrough, Writable } from 'node:stream';
import { wakeCounter, type Wake } from '@skiff/health';
import type { Executor } from '@skiff/shell';
import { watchContainerEvents, type DockerCli } from './compose-commands';

/** What the engine says of some containers while a gate waits for them. */
export interface ContainerEvents extends Wake {
  /** Resolves once the watch runs on the server: from then on no event of the containers is missed. */
  readonly watching: Promise<void>;
  /** Ends the watch (the server's `docker events` is killed); resolves when its channel closed. */
  stop(): Promise<void>;
}

export const WATCH_DESCRIPTION = 'watch container events';

/**
 * The engine's health changes and exits of the containers `filters` select, as a gate's Wake.
 * `docker events` starts on the first `after()` — the gate's first wait, so a gate that passes
 * at once costs no program start. A watch that cannot start or dies is no error: the gate's
 * polls are still there; it only makes the gate look sooner.
 */
export function containerEvents(server: Pick<Executor, 'run'>, cli: DockerCli, filters: readonly string[], timeoutSeconds: number): ContainerEvents {
  const counter = wakeCounter();
  let running: Promise<unknown> | undefined;
  let stdin: PassThrough | undefined;
  let announce: () => void = () => undefined;
  const watching = new Promise<void>((resolve) => (announce = resolve));
  const start = () => {
    stdin = new PassThrough();
    let partial = '';
    let announced = false;
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, done) {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!announced && line === 'watching') {
            announced = true;
            announce();
          } else if (line.trim() !== '') counter.add();
        }
        done();
      },
    });
    running = server
      .run(watchContainerEvents(cli, filters), { description: WATCH_DESCRIPTION, stdin, stdout, timeoutSeconds, allowFailure: true })
      .catch(() => undefined);
  };
  return {
    watching,
    count: () => counter.count(),
    after(seen) {
      if (!running) start();
      return counter.after(seen);
    },
    async stop() {
      stdin?.end();
      await running;
    },
  };
}
