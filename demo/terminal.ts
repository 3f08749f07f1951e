/** Terminal styling for the demo: ANSI only on a TTY and without NO_COLOR, so logs and tests get plain text. */

const COLOR = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

const wrap = (open: number, close: number) => (text: string) => (COLOR ? `\x1b[${open}m${text}\x1b[${close}m` : text);

export const bold = wrap(1, 22);
export const dim = wrap(2, 22);
export const red = wrap(31, 39);
export const green = wrap(32, 39);
export const yellow = wrap(33, 39);
export const cyan = wrap(36, 39);

/** Where the demo wraps text: the terminal's width, or 120 columns when output goes to a file or pipe. */
export function terminalWidth(): number {
  return Math.max(60, Math.min(process.stdout.columns ?? 120, 160));
}

const ANSI = /\x1b\[[0-9;]*m/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

// Code points a terminal draws two columns wide: the emoji the summaries use (✅ ❌) and East Asian wide ranges.
const WIDE: readonly [number, number][] = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x23e9, 0x23ec],
  [0x23f0, 0x23f0],
  [0x23f3, 0x23f3],
  [0x25fd, 0x25fe],
  [0x2614, 0x2615],
  [0x2648, 0x2653],
  [0x267f, 0x267f],
  [0x2693, 0x2693],
  [0x26a1, 0x26a1],
  [0x26aa, 0x26ab],
  [0x26bd, 0x26be],
  [0x26c4, 0x26c5],
  [0x26ce, 0x26ce],
  [0x26d4, 0x26d4],
  [0x26ea, 0x26ea],
  [0x26f2, 0x26f5],
  [0x26fa, 0x26fa],
  [0x26fd, 0x26fd],
  [0x2705, 0x2705],
  [0x270a, 0x270b],
  [0x2728, 0x2728],
  [0x274c, 0x274c],
  [0x274e, 0x274e],
  [0x2753, 0x2755],
  [0x2757, 0x2757],
  [0x2795, 0x2797],
  [0x27b0, 0x27b0],
  [0x27bf, 0x27bf],
  [0x2b1b, 0x2b1c],
  [0x2b50, 0x2b50],
  [0x2b55, 0x2b55],
  [0x2e80, 0xa4cf],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe30, 0xfe4f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1f64f],
  [0x1f680, 0x1f6ff],
  [0x1f900, 0x1faff],
];

function charWidth(codePoint: number): number {
  // Combining marks, zero-width joiners and variation selectors take no column of their own.
  if ((codePoint >= 0x300 && codePoint <= 0x36f) || codePoint === 0x200d || (codePoint >= 0xfe00 && codePoint <= 0xfe0f)) return 0;
  return WIDE.some(([from, to]) => codePoint >= from && codePoint <= to) ? 2 : 1;
}

/** Columns the text takes in a terminal (ANSI codes take none). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of stripAnsi(text)) width += charWidth(char.codePointAt(0)!);
  return width;
}

export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

/** Word-wraps plain text to `width` columns; a word longer than a line is broken. Never returns an empty list. */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/ +/)) {
      let rest = word;
      while (displayWidth(rest) > width) {
        if (line !== '') {
          lines.push(line);
          line = '';
        }
        let cut = '';
        for (const char of rest) {
          if (displayWidth(cut + char) > width) break;
          cut += char;
        }
        lines.push(cut);
        rest = rest.slice(cut.length);
      }
      if (rest === '') continue;
      if (line === '') line = rest;
      else if (displayWidth(`${line} ${rest}`) <= width) line = `${line} ${rest}`;
      else {
        lines.push(line);
        line = rest;
      }
    }
    lines.push(line);
  }
  return lines.length > 0 ? lines : [''];
}

/** A table for the terminal: columns as wide as they need, shrunk (and wrapped) to fit `maxWidth`. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], maxWidth = terminalWidth(), indent = '  '): string[] {
  const columns = headers.length;
  const cells = (row: readonly string[]) => Array.from({ length: columns }, (_, i) => row[i] ?? '');
  const all = [cells(headers), ...rows.map(cells)];
  const widths = Array.from({ length: columns }, (_, i) => Math.max(1, ...all.flatMap((row) => row[i]!.split('\n').map(displayWidth))));
  const budget = maxWidth - indent.length - (columns - 1) * 3;
  // Shrink the widest column one step at a time: narrow columns (status, numbers) stay readable.
  for (let guard = 0; widths.reduce((a, b) => a + b, 0) > budget && guard < 10_000; guard++) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 8) break;
    widths[widest]!--;
  }
  const line = (row: readonly string[], styleCell: (text: string) => string = (t) => t): string[] => {
    const wrapped = row.map((cell, i) => wrapText(cell, widths[i]!));
    const height = Math.max(...wrapped.map((w) => w.length));
    // The last column is not padded, so no line ends in spaces.
    const cellText = (w: string[], h: number, i: number) => (i === columns - 1 ? (w[h] ?? '') : padEnd(w[h] ?? '', widths[i]!));
    return Array.from({ length: height }, (_, h) => {
      const text = `${indent}${wrapped.map((w, i) => styleCell(cellText(w, h, i))).join(dim(' │ '))}`;
      // An empty last cell would leave the separator's trailing space.
      return (wrapped.at(-1)![h] ?? '') === '' ? text.replace(/ (\x1b\[22m)?((?:\x1b\[[0-9;]*m)*)$/, '$1$2') : text;
    });
  };
  const rule = `${indent}${dim(widths.map((w) => '─'.repeat(w)).join('─┼─'))}`;
  // A key/value table has no header text: a rule on top is all it needs.
  const head = all[0]!.every((cell) => cell.trim() === '') ? [rule] : [...line(all[0]!, bold), rule];
  return [...head, ...all.slice(1).flatMap((row) => line(row))];
}
