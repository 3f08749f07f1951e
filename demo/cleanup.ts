/**
 * Everything the demo starts registers how to undo it here, right after it started. `run()` undoes
 * it all once, newest first, each part on its own (one failure does not keep the rest running),
 * whether the story finished, failed or was interrupted.
 */
export class Cleanup {
  private readonly parts: { what: string; undo: () => Promise<unknown> }[] = [];
  private finished: Promise<string[]> | undefined;

  add(what: string, undo: () => Promise<unknown>): void {
    if (this.finished) {
      // Started while cleanup was already running (an interrupted start-up): undo it at once.
      void undo().catch(() => undefined);
      return;
    }
    this.parts.push({ what, undo });
  }

  /** Undoes everything; resolves with what could not be undone (empty when all went). */
  run(): Promise<string[]> {
    this.finished ??= (async () => {
      const failures: string[] = [];
      for (const part of this.parts.reverse()) {
        try {
          await part.undo();
        } catch (error) {
          failures.push(`${part.what}: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      return failures;
    })();
    return this.finished;
  }
}
