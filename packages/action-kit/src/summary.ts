import * as core from '@actions/core';
import type { PlanStep } from '@skiff/shell';

/** Escapes text for a Markdown table cell: a `|` would end the cell and a newline the row. */
function cell(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replace(/\r?\n/g, '<br>');
}

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** A fence longer than any backtick run in the text, so the text cannot close it early. */
export function codeBlock(text: string, language = ''): string {
  const longestRun = Math.max(0, ...[...text.matchAll(/`+/g)].map((match) => match[0].length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return `${fence}${language}\n${text.replace(/\n$/, '')}\n${fence}`;
}

/** A collapsed section; the blank lines let GitHub render the Markdown inside it. */
export function details(title: string, body: string, open = false): string {
  return `<details${open ? ' open' : ''}><summary>${escapeHtml(title)}</summary>\n\n${body}\n\n</details>`;
}

export function inlineCode(text: string): string {
  const longestRun = Math.max(0, ...[...text.matchAll(/`+/g)].map((match) => match[0].length));
  if (longestRun === 0) return `\`${text}\``;
  const fence = '`'.repeat(longestRun + 1);
  return `${fence} ${text} ${fence}`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * A dry run's steps as Markdown, in order. Upload contents appear only as the preview the
 * PlanRecorder kept, which it never keeps for secret uploads.
 */
export function renderPlan(steps: readonly PlanStep[], title = 'Plan (dry run: nothing was run)'): string {
  const parts = [`### ${title}`, ''];
  if (steps.length === 0) parts.push('Nothing to do.');
  steps.forEach((step, index) => {
    const heading = `${index + 1}. **${step.description}**`;
    if (step.kind === 'run') {
      parts.push(heading, '', indent(codeBlock(step.script, 'bash')), '');
    } else {
      const facts = `upload to ${inlineCode(step.remotePath)}, mode ${step.mode}, ${formatBytes(step.bytes)}`;
      if (step.preview === undefined) {
        parts.push(`${heading}: ${facts} (contents are secret and not shown)`, '');
      } else {
        const truncated = Buffer.byteLength(step.preview) < step.bytes ? ' (first part)' : '';
        parts.push(`${heading}: ${facts}`, '', indent(details(`contents${truncated}`, codeBlock(step.preview))), '');
      }
    }
  });
  return `${parts.join('\n').trimEnd()}\n`;
}

// List items need their continuation blocks indented to stay inside the item.
function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `   ${line}`))
    .join('\n');
}

/**
 * Appends Markdown to the job summary. Outside a runner (no GITHUB_STEP_SUMMARY) there is no
 * summary to write, which is not worth failing a local run over.
 */
export async function writeSummary(markdown: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  // A blank line after each block keeps the next block from continuing this one's list or table.
  await core.summary.addRaw(`${markdown.trimEnd()}\n\n`).write();
}
