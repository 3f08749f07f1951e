import { bold, dim, renderTable, terminalWidth, wrapText, yellow } from './terminal';

/**
 * Job-summary Markdown (what an action writes to GITHUB_STEP_SUMMARY) as readable terminal text:
 * headings, aligned tables, code blocks indented, <details> opened with their title shown, HTML
 * tags and entities resolved. Only the subset GitHub summaries use; anything else passes through.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39|apos|nbsp);/g, (_, name: string) => ENTITIES[name]!);
}

/** Inline Markdown and HTML to plain text (no emphasis: widths are counted for wrapping and tables). */
function inline(text: string): string {
  let out = text
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/?(?:b|strong)>/gi, '**')
    .replace(/<\/?(?:code|kbd|samp)>/gi, '`')
    .replace(/<[^>]+>/g, '');
  out = out.replace(/!?\[([^\]]*)\]\(([^)\s]+)\)/g, (_, label: string, url: string) => (label && label !== url ? `${label} (${url})` : url));
  out = out.replace(/(`+) ?([^`]|[^`].*?[^`]) ?\1/g, '$2');
  out = out.replace(/\*\*(.+?)\*\*/g, '$1');
  out = out.replace(/(^|[\s(])_([^_]+)_(?=[\s).,:;]|$)/g, '$1$2');
  return decodeEntities(out);
}

/** Splits a table row on unescaped pipes and unescapes the cell text. */
function tableCells(line: string): string[] {
  const body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  const cells: string[] = [];
  let cell = '';
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    if (char === '\\' && (body[i + 1] === '|' || body[i + 1] === '\\')) {
      cell += body[++i];
    } else if (char === '|') {
      cells.push(cell.trim());
      cell = '';
    } else cell += char;
  }
  cells.push(cell.trim());
  return cells;
}

const isTableSeparator = (line: string | undefined) => line !== undefined && /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(line);

// Terminal control sequences that tools' output can carry into a summary (e.g. `docker compose logs` erasing lines).
const CONTROL = /\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

export function renderMarkdown(markdown: string, width = terminalWidth(), indent = '  '): string {
  const lines = markdown.replace(/\r\n/g, '\n').replace(CONTROL, '').split('\n');
  const out: string[] = [];
  const text = (line: string) => {
    for (const wrapped of wrapText(line, width - indent.length)) out.push(`${indent}${wrapped}`);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^(\s*)(`{3,}|~{3,})/.exec(line);
    if (fence) {
      const marker = fence[2]!;
      for (i++; i < lines.length && !lines[i]!.trim().startsWith(marker); i++) out.push(`${indent}    ${dim(lines[i]!.slice(fence[1]!.length))}`);
      continue;
    }
    if (/^\s*\|/.test(line) && isTableSeparator(lines[i + 1])) {
      const header = tableCells(line).map((cell) => inline(cell));
      const rows: string[][] = [];
      for (i += 2; i < lines.length && /^\s*\|/.test(lines[i]!); i++) rows.push(tableCells(lines[i]!).map((cell) => inline(cell)));
      i--;
      out.push(...renderTable(header, rows, width, indent));
      continue;
    }
    const heading = /^\s*(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const title = inline(heading[2]!);
      if (out.length > 0 && out.at(-1) !== '') out.push('');
      out.push(`${indent}${bold(title)}`);
      if (heading[1]!.length <= 2) out.push(`${indent}${dim('─'.repeat(Math.min(title.length, width - indent.length)))}`);
      continue;
    }
    // <details><summary>Title</summary> opens a collapsed section on GitHub; in a terminal it is shown, titled.
    const summary = /<summary>(.*?)<\/summary>/i.exec(line);
    if (summary) {
      out.push(`${indent}${bold(`▸ ${inline(summary[1]!)}`)}`);
      continue;
    }
    if (/^\s*<\/?details[^>]*>\s*$/i.test(line)) continue;
    const callout = /^\s*>\s*\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*$/i.exec(line);
    if (callout) {
      out.push(`${indent}${yellow(`⚠ ${callout[1]!.toUpperCase()}`)}`);
      continue;
    }
    const quote = /^\s*>\s?(.*)$/.exec(line);
    if (quote) {
      for (const wrapped of wrapText(inline(quote[1]!), width - indent.length - 2)) out.push(`${indent}${dim('│')} ${wrapped}`);
      continue;
    }
    const item = /^(\s*)[-*+]\s+(.*)$/.exec(line);
    if (item) {
      const depth = item[1]!.length;
      const wrapped = wrapText(inline(item[2]!), width - indent.length - depth - 2);
      wrapped.forEach((part, n) => out.push(`${indent}${' '.repeat(depth)}${n === 0 ? '• ' : '  '}${part}`));
      continue;
    }
    if (line.trim() === '') {
      if (out.length > 0 && out.at(-1) !== '') out.push('');
      continue;
    }
    // Plain paragraphs are wrapped before styling, so the ANSI codes never split a word's width count.
    for (const part of inline(line.trim()).split('\n')) text(part);
  }
  while (out.at(-1) === '') out.pop();
  return out.join('\n');
}
