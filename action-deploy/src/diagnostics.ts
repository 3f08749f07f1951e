import { stripVTControlCharacters } from 'node:util';
import * as core from '@actions/core';
import type { Command } from '@skiff/shell';
import type { Deployer } from './deploy';

/**
 * What a person needs to see why a release failed, gathered before anything is rolled back:
 * each command's output (a failing command is shown, not thrown), plus any text already known.
 * Terminal control codes are removed (Compose puts ESC[2K before log lines even without a
 * TTY), so the log and the job summary show plain text.
 */
export class Diagnostics {
  private readonly sections: string[] = [];

  constructor(private readonly d: Pick<Deployer, 'server'>) {}

  add(title: string, text: string): void {
    this.sections.push(`$ ${title}\n${stripVTControlCharacters(text).trimEnd()}`);
  }

  async run(title: string, commands: readonly Command[]): Promise<void> {
    const result = await this.d.server
      .run(commands, { description: title, allowFailure: true, timeoutSeconds: 60 })
      .catch((error: Error) => ({ code: -1, stdout: '', stderr: error.message }));
    this.add(title, `${result.stdout}${result.stderr}`);
  }

  /** Logs them folded under the release's name and returns them for the summary. */
  report(releaseId: string): string {
    const text = this.sections.join('\n\n');
    core.startGroup(`Diagnostics for release ${releaseId}`);
    core.info(text);
    core.endGroup();
    return text;
  }
}
