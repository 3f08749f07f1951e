// Checks GitHub's parser leaves to run time: that every `uses:` of a Skiff action
// (./.skiff/action-x, ./action-x or $/action-x) or of a Skiff reusable workflow
// (./.github/workflows/x.yml or OWNER/skiff/.github/workflows/x.yml@ref) passes only inputs the
// callee declares, every required one, and values of the declared type.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadGitHubParser } from './github-parser';

export const root = join(import.meta.dirname, '..');

type Map = Record<string, unknown>;
const isMap = (value: unknown): value is Map => typeof value === 'object' && value !== null && !Array.isArray(value);
const isExpression = (value: unknown) => typeof value === 'string' && /^\s*\$\{\{[\s\S]*\}\}\s*$/.test(value);

let documents = 0;

/** GitHub's parser and validator; returns its errors and warnings as `line N: message`. */
export async function githubDiagnostics(path: string, text: string, files: Record<string, string> = {}): Promise<string[]> {
  const { validate, TextDocument } = await loadGitHubParser();
  // The language service caches parses by URI, so every call gets its own.
  const document = TextDocument.create(`file:///skiff/${++documents}/${path}`, 'yaml', 1, text);
  const diagnostics = await validate(document, {
    fileProvider: {
      // Resolves `./.github/workflows/x.yml` and `$/action-x/action.yml` against this repository.
      getFileContent: async (ref: { path: string }) => {
        const content = files[ref.path] ?? readFileSync(join(root, ref.path), 'utf8');
        return { name: ref.path, content };
      },
    },
  });
  // severity 1 = error, 2 = warning; parser errors come without a severity. 3/4 are hints (cron text).
  return diagnostics.filter((d) => d.severity === undefined || d.severity <= 2).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
}

interface ActionInput {
  required: boolean;
  hasDefault: boolean;
}

function actionInputs(folder: string): Record<string, ActionInput> | undefined {
  const file = join(root, folder, 'action.yml');
  if (!existsSync(file)) return undefined;
  const yml = parseYaml(readFileSync(file, 'utf8')) as Map;
  return Object.fromEntries(
    Object.entries((yml.inputs ?? {}) as Map).map(([name, spec]) => {
      const s = (spec ?? {}) as Map;
      return [name, { required: s.required === true, hasDefault: s.default !== undefined }];
    }),
  );
}

interface CallInput {
  type: 'string' | 'number' | 'boolean';
  required: boolean;
  hasDefault: boolean;
}
interface CallSignature {
  inputs: Record<string, CallInput>;
  secrets: Record<string, { required: boolean }>;
}

export function workflowCallSignature(text: string): CallSignature | undefined {
  const yml = parseYaml(text) as Map;
  const on = yml.on ?? yml[true as unknown as string]; // YAML 1.1 readers turn `on` into true
  const call = isMap(on) ? on.workflow_call : undefined;
  if (on === undefined || !isMap(on) || !('workflow_call' in on)) return undefined;
  const c = (call ?? {}) as Map;
  return {
    inputs: Object.fromEntries(
      Object.entries((c.inputs ?? {}) as Map).map(([name, spec]) => {
        const s = spec as Map;
        return [name, { type: s.type as CallInput['type'], required: s.required === true, hasDefault: s.default !== undefined }];
      }),
    ),
    secrets: Object.fromEntries(Object.entries((c.secrets ?? {}) as Map).map(([name, spec]) => [name, { required: (spec as Map | null)?.required === true }])),
  };
}

/** The local folder of a Skiff action a step refers to, or undefined for other actions. */
function localAction(uses: string): string | undefined {
  return /^(?:\.\/\.skiff\/|\.\/|\$\/)(action-[a-z0-9-]+)\/?$/.exec(uses)?.[1];
}

/** The workflow file in this repository a job-level `uses:` refers to, or undefined. */
function localWorkflow(uses: string): string | undefined {
  const m = /^(?:\.\/|\$\/|[\w.-]+\/skiff\/)(\.github\/workflows\/[\w.-]+\.ya?ml)(?:@[\w./-]+)?$/.exec(uses);
  return m?.[1];
}

/** Every problem with the `uses:` lines of one workflow, as readable strings. */
export function checkUses(text: string, files: Record<string, string> = {}): string[] {
  const problems: string[] = [];
  const yml = parseYaml(text) as Map;
  for (const [jobId, job] of Object.entries((yml.jobs ?? {}) as Map)) {
    if (!isMap(job)) continue;
    if (typeof job.uses === 'string') {
      const path = localWorkflow(job.uses);
      if (path === undefined) {
        if (/\/skiff\//.test(job.uses) || job.uses.startsWith('./')) problems.push(`job ${jobId}: cannot resolve reusable workflow ${job.uses}`);
        continue;
      }
      const callee = files[path] ?? (existsSync(join(root, path)) ? readFileSync(join(root, path), 'utf8') : undefined);
      const signature = callee === undefined ? undefined : workflowCallSignature(callee);
      if (signature === undefined) {
        problems.push(`job ${jobId}: ${path} does not exist or is not callable (no on.workflow_call)`);
        continue;
      }
      problems.push(...checkCall(`job ${jobId} → ${path}`, (job.with ?? {}) as Map, job.secrets, signature));
      continue;
    }
    for (const [index, step] of ((job.steps ?? []) as Map[]).entries()) {
      if (typeof step.uses !== 'string') continue;
      const folder = localAction(step.uses);
      if (folder === undefined) {
        if (/action-/.test(step.uses) && (step.uses.startsWith('./') || step.uses.startsWith('$/')))
          problems.push(`job ${jobId} step ${index + 1}: unknown local action ${step.uses}`);
        continue;
      }
      const inputs = actionInputs(folder);
      if (inputs === undefined) {
        problems.push(`job ${jobId} step ${index + 1}: ${folder}/action.yml does not exist`);
        continue;
      }
      const given = (step.with ?? {}) as Map;
      for (const name of Object.keys(given)) if (!(name in inputs)) problems.push(`job ${jobId} step ${index + 1} (${folder}): unknown input "${name}"`);
      for (const [name, input] of Object.entries(inputs)) {
        if (input.required && !input.hasDefault && !(name in given))
          problems.push(`job ${jobId} step ${index + 1} (${folder}): required input "${name}" not given`);
      }
    }
  }
  return problems;
}

function checkCall(where: string, given: Map, secrets: unknown, signature: CallSignature): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(given)) {
    const input = signature.inputs[name];
    if (input === undefined) {
      problems.push(`${where}: unknown input "${name}"`);
      continue;
    }
    if (isExpression(value)) continue; // typed at run time
    const actual = typeof value;
    if (actual !== input.type) problems.push(`${where}: input "${name}" is ${input.type}, given ${actual} ${JSON.stringify(value)}`);
  }
  for (const [name, input] of Object.entries(signature.inputs)) {
    if (input.required && !(name in given)) problems.push(`${where}: required input "${name}" not given`);
  }
  if (secrets === 'inherit') return problems;
  const passed = isMap(secrets) ? secrets : {};
  for (const name of Object.keys(passed)) if (!(name in signature.secrets)) problems.push(`${where}: unknown secret "${name}"`);
  for (const [name, secret] of Object.entries(signature.secrets)) {
    if (secret.required && !(name in passed)) problems.push(`${where}: required secret "${name}" not passed`);
  }
  return problems;
}
