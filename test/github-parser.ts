// GitHub's own workflow/action parser (@actions/languageservice, on @actions/workflow-parser),
// bundled for Node with esbuild: the parser imports its JSON schema without an import
// attribute, which Node refuses, so the tests load one esbuild bundle instead.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');

export interface GitHubParser {
  validate: typeof import('@actions/languageservice').validate;
  TextDocument: typeof import('vscode-languageserver-textdocument').TextDocument;
  parseWorkflow: typeof import('@actions/workflow-parser').parseWorkflow;
  convertWorkflowTemplate: typeof import('@actions/workflow-parser').convertWorkflowTemplate;
  NoOperationTraceWriter: typeof import('@actions/workflow-parser').NoOperationTraceWriter;
}

let loaded: Promise<GitHubParser> | undefined;

export function loadGitHubParser(): Promise<GitHubParser> {
  loaded ??= (async () => {
    const result = await build({
      stdin: {
        contents: [
          "export { validate } from '@actions/languageservice';",
          "export { TextDocument } from 'vscode-languageserver-textdocument';",
          "export { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } from '@actions/workflow-parser';",
        ].join(' '),
        resolveDir: root,
        loader: 'js',
      },
      bundle: true,
      format: 'esm',
      platform: 'node',
      write: false,
      logLevel: 'silent',
    });
    const dir = mkdtempSync(join(tmpdir(), 'skiff-gh-parser-'));
    const file = join(dir, 'parser.mjs');
    writeFileSync(file, result.outputFiles[0]!.contents);
    return (await import(pathToFileURL(file).href)) as GitHubParser;
  })();
  return loaded;
}

export interface WorkflowTools {
  parseWorkflow: typeof import('@actions/workflow-parser').parseWorkflow;
  convertWorkflowTemplate: typeof import('@actions/workflow-parser').convertWorkflowTemplate;
  NoOperationTraceWriter: typeof import('@actions/workflow-parser').NoOperationTraceWriter;
  Lexer: typeof import('@actions/expressions').Lexer;
  Parser: typeof import('@actions/expressions').Parser;
  Evaluator: typeof import('@actions/expressions').Evaluator;
  data: typeof import('@actions/expressions').data;
}

let tools: Promise<WorkflowTools> | undefined;

/** GitHub's workflow reader and expression evaluator, for running workflows the way GitHub reads them (test/workflow-runner.ts). */
export function loadWorkflowTools(): Promise<WorkflowTools> {
  tools ??= (async () => {
    const result = await build({
      stdin: {
        contents:
          "export { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } from '@actions/workflow-parser'; export { Lexer, Parser, Evaluator, data } from '@actions/expressions';",
        resolveDir: root,
        loader: 'js',
      },
      bundle: true,
      format: 'esm',
      platform: 'node',
      write: false,
      logLevel: 'silent',
      // The yaml package inside is CommonJS and requires Node built-ins.
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    });
    const dir = mkdtempSync(join(tmpdir(), 'skiff-gh-workflow-'));
    const file = join(dir, 'workflow-tools.mjs');
    writeFileSync(file, result.outputFiles[0]!.contents);
    return (await import(pathToFileURL(file).href)) as WorkflowTools;
  })();
  return tools;
}
