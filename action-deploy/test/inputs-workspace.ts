import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, vi } from 'vitest';

export interface InputsWorkspace {
  /** The test's GITHUB_WORKSPACE, made fresh for each test. */
  readonly path: string;
  /** What the action wrote to stdout in this test (workflow commands such as ::add-mask::). */
  readonly stdout: readonly string[];
}

/**
 * For unit tests of readDeployInputs: each test gets a fresh workspace holding `files`, the
 * GitHub variables the reader falls back on, and stdout captured; all undone after the test.
 */
export function useInputsWorkspace(options: { repository: string; files?: Record<string, string> }): InputsWorkspace {
  const saved = { ...process.env };
  const state = { path: '', stdout: [] as string[] };
  beforeEach(async () => {
    state.stdout = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      state.stdout.push(String(chunk));
      return true;
    });
    state.path = await mkdtemp(join(tmpdir(), 'skiffdeploy-inputs-'));
    for (const [name, content] of Object.entries(options.files ?? {})) await writeFile(join(state.path, name), content);
    process.env.GITHUB_WORKSPACE = state.path;
    process.env.GITHUB_REPOSITORY = options.repository;
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    process.env = { ...saved };
    await rm(state.path, { recursive: true, force: true });
  });
  return state;
}
