import { beforeAll, describe, expect, it } from 'vitest';

/** The demo's terminal rendering of job summaries (demo/markdown.ts, demo/terminal.ts), without colour. */

let renderMarkdown: typeof import('../demo/markdown').renderMarkdown;
let terminal: typeof import('../demo/terminal');

beforeAll(async () => {
  process.env.NO_COLOR = '1';
  ({ renderMarkdown } = await import('../demo/markdown'));
  terminal = await import('../demo/terminal');
});

describe('renderMarkdown', () => {
  it('aligns a table, unescapes pipes and turns <br> into lines of the same row', () => {
    const markdown = ['### Title', '', '| A | Long header |', '| --- | --- |', '| x\\|y | one<br>two |', ''].join('\n');
    expect(renderMarkdown(markdown, 80)).toBe(['  Title', '', '  A   │ Long header', '  ────┼────────────', '  x|y │ one', '      │ two'].join('\n'));
  });

  it('opens <details> under its title, indents code without terminal control sequences, shows callouts and quotes', () => {
    const markdown = [
      '<details><summary>Diagnostics &amp; logs</summary>',
      '',
      '```',
      '$ docker compose ps',
      '\x1b[2Kapp-1 | ok',
      '```',
      '',
      '</details>',
      '',
      '> [!WARNING]',
      '> destination artifact without `encrypt-recipients`',
    ].join('\n');
    expect(renderMarkdown(markdown, 80)).toBe(
      [
        '  ▸ Diagnostics & logs',
        '',
        '      $ docker compose ps',
        '      app-1 | ok',
        '',
        '  ⚠ WARNING',
        '  │ destination artifact without encrypt-recipients',
      ].join('\n'),
    );
  });

  it('a key/value table without header text gets only a rule on top; a list keeps its bullets; bold and links become text', () => {
    const markdown = ['|  |  |', '| --- | --- |', '| Release | r1 |', '', '- **deployed** to [prod](https://example.com)'].join('\n');
    expect(renderMarkdown(markdown, 80)).toBe(['  ────────┼───', '  Release │ r1', '', '  • deployed to prod (https://example.com)'].join('\n'));
  });
});

describe('renderTable', () => {
  it('shrinks the widest column and wraps it to fit the width, counting emoji as two columns', () => {
    const lines = terminal.renderTable(['Check', 'Detail'], [['✅ ok', 'one two three four five six']], 24, '');
    expect(lines).toEqual(['Check │ Detail', '──────┼─────────────────', '✅ ok │ one two three', '      │ four five six']);
    for (const line of lines) expect(terminal.displayWidth(line)).toBeLessThanOrEqual(24);
  });

  it('leaves no trailing space when the last cell of a line is empty', () => {
    expect(terminal.renderTable(['Step', 's'], [['one two three', '1.5']], 14, '')).toEqual(['Step     │ s', '─────────┼────', 'one two  │ 1.5', 'three    │']);
  });
});
