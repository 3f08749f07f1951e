import { afterEach, describe, expect, it, vi } from 'vitest';
import { liveLog } from '../src/index';

function captureStdout(): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(
      ...String(chunk)
        .split('\n')
        .filter((line) => line !== ''),
    );
    return true;
  });
  return lines;
}

afterEach(() => vi.restoreAllMocks());

describe('liveLog', () => {
  it('puts a step in its own group, with workflow commands off so remote lines are shown, never obeyed', () => {
    const lines = captureStdout();
    const live = liveLog();
    live.begin('pre-deploy (pre-deploy-timeout)');
    live.line('migrating 1/2');
    live.line('::add-mask::hunter2');
    live.line('::endgroup::');
    live.end();
    expect(lines[0]).toBe('::group::pre-deploy (pre-deploy-timeout)');
    const token = lines[1]!.match(/^::stop-commands::([0-9a-f]{32})$/)?.[1];
    expect(token).toBeDefined();
    expect(lines.slice(2)).toEqual(['migrating 1/2', '::add-mask::hunter2', '::endgroup::', `::${token}::`, '::endgroup::']);
    // A new token each step: output cannot guess the one that turns commands back on.
    live.begin('next');
    expect(lines.at(-1)).toMatch(/^::stop-commands::[0-9a-f]{32}$/);
    expect(lines.at(-1)).not.toContain(token);
  });

  it('with several hosts at once, prefixes each line with its host instead of grouping', () => {
    const lines = captureStdout();
    const live = liveLog('deploy@web-1:22');
    live.begin('pull images');
    live.line('::add-mask::x');
    live.end();
    expect(lines).toEqual(['[deploy@web-1:22] ▶ pull images', '[deploy@web-1:22] ::add-mask::x']);
  });
});
