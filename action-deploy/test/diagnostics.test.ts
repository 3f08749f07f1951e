import { describe, expect, it, vi } from 'vitest';
import { PlanRecorder, RemoteCommandError } from '@skiff/shell';
import { Diagnostics } from '../src/diagnostics';

describe('Diagnostics', () => {
  it('shows each command with its output, plain text without terminal control codes, and a failing command instead of throwing', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const answers = [{ code: 0, stdout: '\u001b[2Kweb-1  | boom\n\u001b[31mred\u001b[0m\n', stderr: '' }];
    const server = {
      run: vi.fn(async () => {
        const next = answers.shift();
        if (!next) throw new RemoteCommandError('docker compose ps', { code: 1, stdout: '', stderr: 'no such project' });
        return next;
      }),
    };
    const found = new Diagnostics({ server: server as unknown as PlanRecorder });
    await found.run('docker compose logs', [['docker', 'compose', 'logs']]);
    await found.run('docker compose ps', [['docker', 'compose', 'ps']]);
    found.add('health log', '\u001b[2Kunhealthy');
    const text = found.report('r1');
    expect(text).toBe(
      '$ docker compose logs\nweb-1  | boom\nred\n\n$ docker compose ps\ndocker compose ps failed with exit code 1:\nno such project\n\n$ health log\nunhealthy',
    );
    expect(text).not.toContain('\u001b');
    vi.restoreAllMocks();
  });
});
