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
}

let loaded: Promise<GitHubParser> | undefined;

export function loadGitHubParser(): Promise<GitHubParser> {
  loaded ??= (async () => {
    const result = await build({
      stdin: {
        contents: "export { validate } from '@actions/languageservice'; export { TextDocument } from 'vscode-languageserver-textdocument';",
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
