// Runs a user's workflow the way GitHub would, as far as Skiff's part of it goes: GitHub's own
// parser reads the caller's workflow and the reusable workflow it calls, GitHub's own evaluator
// resolves every `${{ }}`, and the committed action bundles run with exactly the inputs the
// workflows give them (plus their action.yml defaults, as the runner adds them). A workflow that
// forgets to pass something is caught here, because nothing else feeds the actions.
//
// Stand-ins, each the smallest faithful copy of the real behaviour: actions/checkout copies the
// caller's repository (or links this Skiff checkout for `repository: job.workflow_repository`),
// actions/upload-artifact and download-artifact keep files in the run's directory. Any other
// third-party action fails its step unless the test supplies a stand-in, so nothing is skipped
// silently.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseFileCommands, runBundle } from '@skiff/testbed';
import { loadWorkflowTools, type WorkflowTools } from './github-parser';

const root = join(import.meta.dirname, '..');

/** The stand-in for the SHA a caller pins: whatever the ref, `OWNER/skiff/…@<40 hex>` runs this checkout. */
export const SKIFF_REPOSITORY = 'skiff-dev/skiff';
const SKIFF_WORKFLOW = /^[\w.-]+\/skiff\/(\.github\/workflows\/[\w.-]+\.ya?ml)@([0-9a-f]{40})$/;
const SKIFF_ACTION = /^[\w.-]+\/skiff\/(action-[a-z0-9-]+)@[0-9a-f]{40}$/;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type Dict = Record<string, Json>;
// Tokens of @actions/workflow-parser, read by their type number (templates/tokens/types.ts).
interface Token {
  templateTokenType: number;
  value?: unknown;
  expression?: string;
  count?: number;
  get?(index: number): unknown;
  find?(key: string): Token | undefined;
  line?: number;
}
const T = { String: 0, Sequence: 1, Mapping: 2, Expression: 3, Boolean: 5, Number: 6, Null: 7 } as const;

export interface StepResult {
  job: string;
  id: string;
  name: string;
  uses?: string;
  outcome: 'success' | 'failure' | 'skipped';
  /** For a Skiff action: exactly the INPUT_* values it got, defaults included. */
  inputs?: Record<string, string>;
  outputs: Record<string, string>;
  log: string;
  summary: string;
}

export interface JobResult {
  /** `caller-job` or `caller-job/called-job` for a job of a reusable workflow; matrix legs share it. */
  id: string;
  result: 'success' | 'failure' | 'skipped';
  outputs: Record<string, string>;
  steps: StepResult[];
  /** Why it failed before its steps (an evaluation error), if it did. */
  error?: string;
}

export interface WorkflowRun {
  result: 'success' | 'failure';
  jobs: JobResult[];
  log: string;
  /** Every run of a step by its id (or uses/name), in order. */
  steps(id: string): StepResult[];
  /** The single run of a Skiff action in the run, by folder name; throws when there is not exactly one. */
  action(folder: string): StepResult;
  remove(): Promise<void>;
}

export interface ActionStandIn {
  (step: {
    with: Record<string, string>;
    workspace: string;
    runDir: string;
    env: Record<string, string>;
  }): Promise<{ outcome: 'success' | 'failure'; outputs?: Record<string, string>; log?: string }>;
}

export interface WorkflowRunOptions {
  /** The caller's repository as it would be checked out: the example folder. */
  repository: string;
  /** Path of the workflow inside it, e.g. `.github/workflows/ship.yml`. */
  workflow: string;
  event: { name: string; inputs?: Record<string, string | boolean | number>; ref?: string };
  secrets?: Record<string, string>;
  vars?: Record<string, string>;
  /** github context fields: repository, actor, token, sha… */
  github?: Record<string, string>;
  /** Added to every step's environment (PATH for the test bed's docker, for instance). */
  env?: Record<string, string>;
  /** Stand-ins for third-party actions by `owner/name` (no ref). */
  actions?: Record<string, ActionStandIn>;
  stepTimeoutMs?: number;
  /**
   * Registry host names the test bed answers for, e.g. `{ 'ghcr.io': '127.0.0.1:5000' }`: every
   * Skiff action input naming the host gets the stand-in's address instead, as DNS would give it.
   */
  hostAliases?: Record<string, string>;
}

interface Scope {
  github: Dict;
  inputs: Dict;
  secrets: Dict;
  vars: Dict;
  /** For jobs of a reusable workflow: that workflow's path and the SHA it runs at. */
  workflowRef?: { path: string; sha: string };
  workflowFile: string;
  workflowText: string;
}

class WorkflowError extends Error {}

export async function runWorkflow(options: WorkflowRunOptions): Promise<WorkflowRun> {
  const tools = await loadWorkflowTools();
  const runDir = await mkdtemp(join(tmpdir(), 'skiff-workflow-'));
  const run = new Runner(tools, options, runDir);
  const callerText = readFileSync(join(options.repository, options.workflow), 'utf8');
  const github: Dict = {
    repository: 'acme/shop',
    repository_owner: 'acme',
    actor: 'jane-dev',
    token: 'ghs_workflowRunnerToken0000000000000000',
    sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    ref: options.event.ref ?? 'refs/heads/main',
    ref_name: (options.event.ref ?? 'refs/heads/main').replace(/^refs\/(heads|tags)\//, ''),
    event_name: options.event.name,
    run_id: '4242',
    run_attempt: '1',
    server_url: 'https://github.com',
    api_url: 'https://api.github.com',
    workflow: options.workflow,
    ...options.github,
  };
  // The webhook payload GitHub writes for the event: what actions read from GITHUB_EVENT_PATH (the default branch, for `latest`).
  await writeFile(
    join(runDir, 'event.json'),
    JSON.stringify({
      ref: github.ref,
      after: github.sha,
      repository: { full_name: github.repository, name: String(github.repository).split('/')[1], default_branch: 'main' },
      ...(options.event.name === 'workflow_dispatch' ? { inputs: options.event.inputs ?? {} } : {}),
    }),
  );
  const template = await run.read(options.workflow, callerText);
  const events = template.events as Record<string, unknown>;
  if (!(options.event.name in events))
    throw new WorkflowError(`${options.workflow} does not run on ${options.event.name} (it has on: ${Object.keys(events).join(', ')})`);
  const inputs: Dict = {};
  if (options.event.name === 'workflow_dispatch') {
    const defined = ((events.workflow_dispatch as { inputs?: Record<string, { default?: Json; required?: boolean; type?: string }> } | null)?.inputs ??
      {}) as Record<string, { default?: Json; required?: boolean; type?: string }>;
    for (const name of Object.keys(options.event.inputs ?? {}))
      if (!(name in defined)) throw new WorkflowError(`workflow_dispatch input ${name} is not defined in ${options.workflow}`);
    for (const [name, def] of Object.entries(defined)) {
      const given = options.event.inputs?.[name];
      if (given === undefined && def.required && def.default === undefined) throw new WorkflowError(`workflow_dispatch input ${name} is required`);
      const value = given ?? def.default ?? (def.type === 'boolean' ? false : '');
      inputs[name] = def.type === 'boolean' ? value === true || value === 'true' : value;
    }
  }
  github.event = { inputs };
  const scope: Scope = {
    github,
    inputs,
    secrets: { GITHUB_TOKEN: github.token as string, ...options.secrets },
    vars: { ...options.vars },
    workflowFile: options.workflow,
    workflowText: callerText,
  };
  const jobs = await run.jobs(template, scope, '');
  const failed = jobs.some((job) => job.result === 'failure');
  return {
    result: failed ? 'failure' : 'success',
    jobs,
    log: run.log,
    steps: (id) => jobs.flatMap((job) => job.steps).filter((step) => step.id === id),
    action: (folder) => {
      // `./.skiff/action-x` in Skiff's reusable workflows, `OWNER/skiff/action-x@<sha>` in a caller's own job.
      const found = jobs.flatMap((job) => job.steps).filter((step) => step.uses?.replace(/@[^/]*$/, '').endsWith(`/${folder}`) && step.outcome !== 'skipped');
      if (found.length !== 1) throw new Error(`expected one run of ${folder}, found ${found.length}:\n${run.log}`);
      return found[0]!;
    },
    remove: () => rm(runDir, { recursive: true, force: true }),
  };
}

class Runner {
  log = '';

  constructor(
    private tools: WorkflowTools,
    private options: WorkflowRunOptions,
    private runDir: string,
  ) {}

  /** GitHub's parse and conversion of one workflow file; its errors end the run, as on GitHub. */
  async read(path: string, text: string) {
    const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = this.tools;
    const parsed = parseWorkflow({ name: path, content: text }, new NoOperationTraceWriter());
    const errors = parsed.context.errors.getErrors();
    if (errors.length > 0 || !parsed.value) throw new WorkflowError(`${path}: ${errors.map((e) => e.message).join('; ')}`);
    const template = await convertWorkflowTemplate(parsed.context, parsed.value);
    if (template.errors?.length) throw new WorkflowError(`${path}: ${template.errors.map((e) => e.Message).join('; ')}`);
    return Object.assign(template, { raw: parsed.value });
  }

  private say(line: string) {
    this.log += `${line}\n`;
  }

  // ---- expressions -------------------------------------------------------------------------

  private evaluateExpression(expression: string, context: Dict, status: { failed: boolean }): Json {
    const { Lexer, Parser, Evaluator, data } = this.tools;
    const statusFunctions = [
      { name: 'success', minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(!status.failed) },
      { name: 'failure', minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(status.failed) },
      { name: 'always', minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(true) },
      { name: 'cancelled', minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(false) },
    ];
    const tokens = new Lexer(expression).lex().tokens;
    const tree = new Parser(tokens, Object.keys(context), statusFunctions).parse();
    const dictionary = JSON.parse(JSON.stringify(context), data.reviver) as InstanceType<typeof data.Dictionary>;
    const result = new Evaluator(tree, dictionary, new Map(statusFunctions.map((f) => [f.name, f]))).evaluate();
    return JSON.parse(JSON.stringify(result, data.replacer) ?? 'null') as Json;
  }

  /** A template token's value with every expression in it resolved. */
  evaluate(token: Token | undefined, context: Dict, status = { failed: false }): Json {
    if (token === undefined) return null;
    switch (token.templateTokenType) {
      case T.String:
      case T.Boolean:
      case T.Number:
        return token.value as Json;
      case T.Null:
        return null;
      case T.Expression:
        return this.evaluateExpression(token.expression!, context, status);
      case T.Sequence:
        return Array.from({ length: token.count! }, (_, i) => this.evaluate(token.get!(i) as Token, context, status));
      case T.Mapping: {
        const out: Dict = {};
        for (let i = 0; i < token.count!; i++) {
          const pair = token.get!(i) as { key: Token; value: Token };
          out[String(pair.key.value)] = this.evaluate(pair.value, context, status);
        }
        return out;
      }
      default:
        throw new WorkflowError(`unsupported token type ${token.templateTokenType} (line ${token.line})`);
    }
  }

  // ---- jobs --------------------------------------------------------------------------------

  async jobs(template: Awaited<ReturnType<Runner['read']>>, scope: Scope, prefix: string): Promise<JobResult[]> {
    const results: JobResult[] = [];
    const needs: Record<string, { result: string; outputs: Record<string, string> }> = {};
    const pending = [...template.jobs];
    while (pending.length > 0) {
      const index = pending.findIndex((job) => (job.needs ?? []).every((need) => need.value in needs));
      if (index < 0) throw new WorkflowError(`jobs ${pending.map((job) => job.id.value).join(', ')} wait on jobs that never run`);
      const job = pending.splice(index, 1)[0]!;
      const id = job.id.value;
      const neededResults = (job.needs ?? []).map((need) => needs[need.value]!.result);
      const context: Dict = {
        ...this.base(scope),
        needs: Object.fromEntries((job.needs ?? []).map((need) => [need.value, needs[need.value]!])),
      };
      const failedNeed = neededResults.some((result) => result !== 'success');
      const runIt = this.truthy(this.evaluate(job.if, context, { failed: failedNeed }));
      const rawJob = find(template.raw, 'jobs', id);
      if (!runIt) {
        this.say(`job ${prefix}${id}: skipped (if: ${job.if.expression})`);
        needs[id] = { result: 'skipped', outputs: {} };
        results.push({ id: `${prefix}${id}`, result: 'skipped', outputs: {}, steps: [] });
        continue;
      }
      let jobResults: JobResult[];
      if (job.type === 'reusableWorkflowJob') jobResults = await this.callWorkflow(job, context, scope, `${prefix}${id}`);
      else jobResults = await this.runJob(job, rawJob, context, scope, `${prefix}${id}`);
      results.push(...jobResults);
      const own = jobResults.filter((result) => result.id === `${prefix}${id}`);
      const result = jobResults.some((r) => r.result === 'failure') ? 'failure' : 'success';
      const outputs = Object.assign({}, ...own.map((r) => r.outputs)) as Record<string, string>;
      needs[id] = { result, outputs };
    }
    return results;
  }

  private base(scope: Scope): Dict {
    return { github: scope.github, inputs: scope.inputs, secrets: scope.secrets, vars: scope.vars, env: {} };
  }

  private truthy(value: Json): boolean {
    return !(value === false || value === null || value === 0 || value === '');
  }

  private async callWorkflow(
    job: { ref: Token; 'input-values'?: Token; 'secret-values'?: Token; 'inherit-secrets'?: boolean; strategy?: Token },
    context: Dict,
    scope: Scope,
    id: string,
  ): Promise<JobResult[]> {
    const uses = String(job.ref.value);
    const match = SKIFF_WORKFLOW.exec(uses);
    if (!match)
      return [
        {
          id,
          result: 'failure',
          outputs: {},
          steps: [],
          error: `cannot run reusable workflow ${uses}: only OWNER/skiff/.github/workflows/<file>@<40-character SHA> is known here`,
        },
      ];
    const [, path, sha] = match;
    const text = readFileSync(join(root, path!), 'utf8');
    const template = await this.read(path!, text);
    const call = (
      template.events as {
        workflow_call?: { inputs?: Record<string, { type: string; required?: boolean; default?: Json }>; secrets?: Record<string, { required?: boolean }> };
      }
    ).workflow_call;
    if (!call) return [{ id, result: 'failure', outputs: {}, steps: [], error: `${path} has no on.workflow_call` }];
    try {
      const given = (this.evaluate(job['input-values'], context) ?? {}) as Dict;
      const inputs: Dict = {};
      for (const name of Object.keys(given))
        if (!(name in (call.inputs ?? {}))) throw new WorkflowError(`Invalid input, ${name} is not defined in the referenced workflow ${path}`);
      for (const [name, def] of Object.entries(call.inputs ?? {})) {
        let value = given[name];
        if (value === undefined || value === null) {
          if (def.required && def.default === undefined) throw new WorkflowError(`Input ${name} is required, but not provided while calling ${path}`);
          value =
            (typeof def.default === 'object' && def.default !== null
              ? this.evaluate(def.default as unknown as Token, { github: scope.github })
              : def.default) ?? (def.type === 'boolean' ? false : def.type === 'number' ? 0 : '');
        }
        if (def.type === 'boolean' && typeof value !== 'boolean')
          throw new WorkflowError(`Input ${name} of ${path} is a boolean, given ${JSON.stringify(value)}`);
        if (def.type === 'number' && typeof value !== 'number') throw new WorkflowError(`Input ${name} of ${path} is a number, given ${JSON.stringify(value)}`);
        if (def.type === 'string' && typeof value !== 'string') value = String(value);
        inputs[name] = value;
      }
      const passed = job['inherit-secrets'] ? { ...scope.secrets } : ((this.evaluate(job['secret-values'], context) ?? {}) as Dict);
      for (const name of Object.keys(passed))
        if (!job['inherit-secrets'] && !(name in (call.secrets ?? {})))
          throw new WorkflowError(`Invalid secret, ${name} is not defined in the referenced workflow ${path}`);
      for (const [name, def] of Object.entries(call.secrets ?? {}))
        if (def.required && !passed[name]) throw new WorkflowError(`Secret ${name} is required, but not provided while calling ${path}`);
      const called: Scope = {
        github: scope.github,
        inputs,
        secrets: { GITHUB_TOKEN: scope.github.token as string, ...passed },
        vars: scope.vars,
        workflowRef: { path: path!, sha: sha! },
        workflowFile: path!,
        workflowText: text,
      };
      this.say(`job ${id}: calls ${path}@${sha} with ${JSON.stringify(Object.keys(given))}`);
      const results = await this.jobs(template, called, `${id}/`);
      // The calling job's outputs are the called workflow's on.workflow_call.outputs.
      const outputsToken = find(template.raw, 'on', 'workflow_call', 'outputs');
      const jobsContext: Dict = {};
      for (const result of results) {
        const jobId = result.id.slice(id.length + 1);
        if (!jobId.includes('/'))
          jobsContext[jobId] = { result: result.result, outputs: { ...((jobsContext[jobId] as Dict | undefined)?.outputs as Dict), ...result.outputs } };
      }
      const outputs: Record<string, string> = {};
      for (const [name, spec] of Object.entries(
        (outputsToken ? this.evaluate(outputsToken, { ...this.base(called), jobs: jobsContext }) : {}) as Record<string, Dict>,
      ))
        outputs[name] = stringify(spec.value ?? '');
      return [...results, { id, result: results.some((r) => r.result === 'failure') ? 'failure' : 'success', outputs, steps: [] }];
    } catch (error) {
      if (!(error instanceof WorkflowError)) throw error;
      this.say(`job ${id}: ${error.message}`);
      return [{ id, result: 'failure', outputs: {}, steps: [], error: error.message }];
    }
  }

  private matrixLegs(strategy: Json): Dict[] {
    if (strategy === null) return [{}];
    const matrix = (strategy as Dict).matrix as Dict | undefined;
    if (!matrix) return [{}];
    const vectors = Object.entries(matrix).filter(([key]) => key !== 'include' && key !== 'exclude');
    if (matrix.exclude !== undefined || (vectors.length > 0 && matrix.include !== undefined))
      throw new WorkflowError('matrix include together with vectors, or exclude, is not supported by this runner');
    if (matrix.include !== undefined) {
      if (!Array.isArray(matrix.include) || matrix.include.length === 0) throw new WorkflowError("Matrix vector 'include' does not contain any values");
      return matrix.include as Dict[];
    }
    let legs: Dict[] = [{}];
    for (const [key, values] of vectors) {
      if (!Array.isArray(values) || values.length === 0) throw new WorkflowError(`Matrix vector '${key}' does not contain any values`);
      legs = legs.flatMap((leg) => values.map((value) => ({ ...leg, [key]: value })));
    }
    return legs;
  }

  private async runJob(
    job: { strategy?: Token; steps: StepSpec[]; outputs?: Token; env?: Token },
    rawJob: Token | undefined,
    context: Dict,
    scope: Scope,
    id: string,
  ): Promise<JobResult[]> {
    let legs: Dict[];
    try {
      legs = this.matrixLegs(this.evaluate(job.strategy, context));
    } catch (error) {
      if (!(error instanceof WorkflowError) && !(error instanceof Error)) throw error;
      this.say(`job ${id}: Error when evaluating 'strategy': ${error.message}`);
      return [{ id, result: 'failure', outputs: {}, steps: [], error: `Error when evaluating 'strategy' for job '${id}': ${error.message}` }];
    }
    const results: JobResult[] = [];
    for (const matrix of legs) {
      results.push(await this.runLeg(job, rawJob, { ...context, matrix, strategy: {} }, scope, id));
      if (results.at(-1)!.result === 'failure') break; // fail-fast
    }
    return results;
  }

  private async runLeg(
    job: { steps: StepSpec[]; outputs?: Token; env?: Token },
    rawJob: Token | undefined,
    context: Dict,
    scope: Scope,
    id: string,
  ): Promise<JobResult> {
    const workspace = await mkdtemp(join(this.runDir, 'ws-'));
    const temp = await mkdtemp(join(this.runDir, 'temp-'));
    const jobContext: Dict = {
      status: 'success',
      ...(scope.workflowRef ? { workflow_repository: SKIFF_REPOSITORY, workflow_sha: scope.workflowRef.sha, workflow_file_path: scope.workflowRef.path } : {}),
    };
    const steps: Dict = {};
    const stepResults: StepResult[] = [];
    const env: Record<string, string> = {};
    const status = { failed: false };
    const posts: { folder: string; bundle: string; inputs: Record<string, string>; state: Record<string, string>; step: StepResult }[] = [];
    const ctx = (): Dict => ({ ...context, job: jobContext, steps, env, runner: { temp, os: 'Linux', arch: 'X64' } });
    Object.assign(env, stringMap(this.evaluate(job.env, ctx())));
    this.say(`job ${id}${Object.keys(context.matrix as Dict).length ? ` (${JSON.stringify(context.matrix)})` : ''}: started`);
    for (const [index, step] of job.steps.entries()) {
      const rawStep = rawJob ? (find(rawJob, 'steps')?.get?.(index) as Token | undefined) : undefined;
      const name = step.name ? stringify(this.evaluate(step.name as Token, ctx())) : step.uses ? `Run ${String(step.uses.value)}` : 'Run';
      const record: StepResult = {
        job: id,
        id: step.id,
        name,
        uses: step.uses ? String(step.uses.value) : undefined,
        outcome: 'skipped',
        outputs: {},
        log: '',
        summary: '',
      };
      stepResults.push(record);
      let runIt: boolean;
      try {
        runIt = this.truthy(this.evaluate(step.if as Token, ctx(), status));
      } catch (error) {
        record.outcome = 'failure';
        record.log = `Error evaluating if: ${(error as Error).message}`;
        status.failed = true;
        continue;
      }
      if (!runIt) {
        this.say(`  step ${name}: skipped`);
        steps[step.id] = { outcome: 'skipped', conclusion: 'skipped', outputs: {} };
        continue;
      }
      const stepEnv = { ...env, ...stringMap(this.evaluate(step.env as Token | undefined, ctx())) };
      const withValues = stringMap(this.evaluate(rawStep ? find(rawStep, 'with') : undefined, ctx()));
      const runnerVars = this.runnerVars(scope, workspace, temp, id);
      try {
        if (step.run) await this.runScript(stringify(this.evaluate(step.run as Token, ctx())), { ...runnerVars, ...stepEnv }, workspace, record, env);
        else await this.runAction(String(step.uses!.value), withValues, { ...runnerVars, ...stepEnv }, workspace, scope, record, posts, ctx());
      } catch (error) {
        record.outcome = 'failure';
        record.log += `${(error as Error).stack ?? String(error)}\n`;
      }
      this.say(`  step ${name}: ${record.outcome}`);
      if (record.outcome === 'failure') this.say(indent(record.log));
      steps[step.id] = { outcome: record.outcome, conclusion: record.outcome, outputs: record.outputs };
      if (record.outcome === 'failure') status.failed = true;
    }
    for (const post of posts.reverse()) {
      const result = await runBundle(post.bundle, {
        inputs: post.inputs,
        state: post.state,
        phase: 'post',
        cwd: workspace,
        env: { ...this.runnerVars(scope, workspace, temp, id), ...this.options.env },
        timeoutMs: this.options.stepTimeoutMs,
      });
      post.step.log += `--- post ---\n${result.masked}`;
      this.say(`  post ${post.folder}: ${result.code === 0 ? 'success' : 'failure'}`);
      if (result.code !== 0) status.failed = true;
    }
    jobContext.status = status.failed ? 'failure' : 'success';
    const outputs = stringMap(this.evaluate(job.outputs, ctx()));
    return { id, result: status.failed ? 'failure' : 'success', outputs, steps: stepResults };
  }

  private runnerVars(scope: Scope, workspace: string, temp: string, job: string): Record<string, string> {
    const g = scope.github;
    return {
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: String(g.repository),
      GITHUB_REPOSITORY_OWNER: String(g.repository_owner),
      GITHUB_ACTOR: String(g.actor),
      GITHUB_SHA: String(g.sha),
      GITHUB_REF: String(g.ref),
      GITHUB_REF_NAME: String(g.ref_name),
      GITHUB_EVENT_NAME: String(g.event_name),
      GITHUB_EVENT_PATH: join(this.runDir, 'event.json'),
      GITHUB_RUN_ID: String(g.run_id),
      GITHUB_RUN_ATTEMPT: String(g.run_attempt),
      GITHUB_SERVER_URL: String(g.server_url),
      GITHUB_API_URL: String(g.api_url),
      GITHUB_WORKSPACE: workspace,
      GITHUB_JOB: job.split('/').at(-1)!,
      RUNNER_TEMP: temp,
      ...this.options.env,
    };
  }

  private async runScript(script: string, env: Record<string, string>, workspace: string, record: StepResult, jobEnv: Record<string, string>) {
    const dir = await mkdtemp(join(this.runDir, 'step-'));
    const files = {
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_ENV: join(dir, 'env'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      GITHUB_PATH: join(dir, 'path'),
    };
    await Promise.all(Object.values(files).map((file) => writeFile(file, '')));
    await writeFile(join(dir, 'script.sh'), script);
    const { code, output } = await new Promise<{ code: number | null; output: string }>((done, fail) => {
      // GitHub's default shell for run steps on Linux.
      const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', join(dir, 'script.sh')], {
        cwd: workspace,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env, ...files },
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), this.options.stepTimeoutMs ?? 170_000);
      child.on('error', fail);
      child.on('close', (code) => {
        clearTimeout(timer);
        done({ code, output });
      });
    });
    record.log = output;
    record.outputs = parseFileCommands(await readFile(files.GITHUB_OUTPUT, 'utf8'));
    Object.assign(jobEnv, parseFileCommands(await readFile(files.GITHUB_ENV, 'utf8')));
    record.summary = await readFile(files.GITHUB_STEP_SUMMARY, 'utf8');
    record.outcome = code === 0 ? 'success' : 'failure';
  }

  private async runAction(
    uses: string,
    given: Record<string, string>,
    env: Record<string, string>,
    workspace: string,
    scope: Scope,
    record: StepResult,
    posts: { folder: string; bundle: string; inputs: Record<string, string>; state: Record<string, string>; step: StepResult }[],
    context: Dict,
  ) {
    const local = /^\.\/(?:\.skiff\/)?(action-[a-z0-9-]+)$/.exec(uses);
    // A caller's own step on one of Skiff's actions, pinned as the READMEs say: this checkout's folder.
    const pinned = SKIFF_ACTION.exec(uses);
    if (local || pinned) {
      const folder = (local ?? pinned)![1]!;
      const actionDir = local ? join(workspace, uses) : join(root, folder);
      if (!existsSync(join(actionDir, 'action.yml')))
        throw new WorkflowError(local ? `${uses}: no action.yml in the workspace (was Skiff checked out to .skiff?)` : `${uses}: Skiff has no such action`);
      const spec = parseYaml(await readFile(join(actionDir, 'action.yml'), 'utf8')) as {
        inputs?: Record<string, { default?: string; required?: boolean }>;
        runs: { main: string; post?: string };
      };
      const inputs: Record<string, string> = {};
      for (const name of Object.keys(given))
        if (!(name in (spec.inputs ?? {}))) this.say(`  warning: ${uses} has no input ${name} (GitHub warns: Unexpected input)`);
      for (const [name, def] of Object.entries(spec.inputs ?? {})) {
        if (name in given) inputs[name] = given[name]!;
        else if (def.default !== undefined) inputs[name] = stringify(this.evaluate(await this.expressionToken(String(def.default)), context));
      }
      for (const [host, alias] of Object.entries(this.options.hostAliases ?? {})) {
        const pattern = new RegExp(`(?<![\\w.-])${host.replace(/\./g, '\\.')}(?![\\w.-])`, 'g');
        for (const name of Object.keys(inputs)) inputs[name] = inputs[name]!.replace(pattern, alias);
      }
      record.inputs = inputs;
      const bundle = join(actionDir, spec.runs.main);
      const result = await runBundle(bundle, { inputs, cwd: workspace, env, timeoutMs: this.options.stepTimeoutMs });
      record.log = result.masked;
      record.outputs = result.outputs;
      record.summary = result.summary;
      record.outcome = result.code === 0 ? 'success' : 'failure';
      if (spec.runs.post) posts.push({ folder, bundle: join(actionDir, spec.runs.post), inputs, state: result.state, step: record });
      return;
    }
    const name = uses.replace(/@.*$/, '');
    const standIn = this.options.actions?.[name] ?? BUILT_IN[name];
    if (!standIn) throw new WorkflowError(`no stand-in for ${uses} in this runner: give one in options.actions`);
    const result = await standIn({ with: given, workspace, runDir: this.runDir, env, scope, repository: this.options.repository });
    record.outcome = result.outcome;
    record.outputs = result.outputs ?? {};
    record.log = result.log ?? '';
  }

  /** A default like `${{ github.token }}` as GitHub's parser would read it: one expression token, or a plain string. */
  private async expressionToken(text: string): Promise<Token> {
    if (!text.includes('${{')) return { templateTokenType: T.String, value: text };
    const { parseWorkflow, NoOperationTraceWriter } = this.tools;
    // Read through the workflow reader so `a ${{ x }} b` becomes format('a {0} b', x) exactly as GitHub does.
    const parsed = parseWorkflow(
      {
        name: 'default.yml',
        content: `on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: a/b@v1\n        with:\n          v: ${JSON.stringify(text)}\n`,
      },
      new NoOperationTraceWriter(),
    );
    return find(find(find(find(parsed.value, 'jobs', 'j'), 'steps')!.get!(0) as Token, 'with'), 'v')!;
  }
}

interface StepSpec {
  id: string;
  name?: unknown;
  if?: unknown;
  run?: unknown;
  uses?: { value: unknown };
  env?: unknown;
}

const BUILT_IN: Record<
  string,
  (step: {
    with: Record<string, string>;
    workspace: string;
    runDir: string;
    scope: Scope;
    repository: string;
  }) => Promise<{ outcome: 'success' | 'failure'; outputs?: Record<string, string>; log?: string }>
> = {
  async 'actions/checkout'(step) {
    const path = join(step.workspace, step.with.path ?? '');
    if (step.with.repository) {
      // Only Skiff itself is checked out by repository: this checkout, at the SHA the caller pinned.
      const ref = step.scope.workflowRef;
      if (step.with.repository !== SKIFF_REPOSITORY || !ref || step.with.ref !== ref.sha)
        return {
          outcome: 'failure',
          log: `checkout of ${step.with.repository}@${step.with.ref}: only ${SKIFF_REPOSITORY} at the called workflow's SHA is available here`,
        };
      await mkdir(join(path, '..'), { recursive: true });
      await symlink(root, path);
      return { outcome: 'success', log: `linked ${root} as ${SKIFF_REPOSITORY}@${ref.sha}` };
    }
    const repository = step.repository;
    await mkdir(path, { recursive: true });
    await cp(repository, path, { recursive: true, filter: (source) => basename(source) !== '.git' });
    return { outcome: 'success', log: `copied ${repository}` };
  },
  async 'actions/upload-artifact'(step) {
    const dir = join(step.runDir, 'artifacts', step.with.name ?? 'artifact');
    await mkdir(dir, { recursive: true });
    const paths = (step.with.path ?? '')
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .map((path) => (isAbsolute(path) ? path : join(step.workspace, path)));
    const missing = paths.filter((path) => !existsSync(path));
    if (missing.length > 0 && (step.with['if-no-files-found'] ?? 'warn') === 'error')
      return { outcome: 'failure', log: `No files were found with the provided path: ${missing.join(', ')}` };
    // As upload-artifact v4 stores them: a file by its name, a directory's contents relative to it.
    for (const path of paths.filter((p) => existsSync(p))) {
      if ((await stat(path)).isDirectory()) await cp(path, dir, { recursive: true });
      else await copyFile(path, join(dir, basename(path)));
    }
    return { outcome: 'success', outputs: { 'artifact-id': '1' } };
  },
  async 'actions/download-artifact'(step) {
    const dir = join(step.runDir, 'artifacts');
    const pattern = new RegExp(
      `^${(step.with.pattern ?? step.with.name ?? '*')
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    const names = existsSync(dir) ? (await readdir(dir)).filter((name) => pattern.test(name)) : [];
    const target = step.with.path ? (isAbsolute(step.with.path) ? step.with.path : join(step.workspace, step.with.path)) : step.workspace;
    if (step.with.name && names.length === 0)
      return { outcome: 'failure', log: `Unable to download artifact(s): Artifact not found for name: ${step.with.name}` };
    await mkdir(target, { recursive: true });
    for (const name of names) {
      // By name (or merged), into path itself; by pattern, each into a folder of its name.
      const into = step.with.name || step.with['merge-multiple'] === 'true' ? target : join(target, name);
      await cp(join(dir, name), into, { recursive: true });
    }
    return { outcome: 'success', log: `downloaded ${names.join(', ')}` };
  },
};

/** The value a runner hands a step: strings as they are, everything else as GitHub prints it. */
function stringify(value: Json): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value, null, 2);
}

function stringMap(value: Json): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, stringify(v)]));
}

/** A nested mapping entry of the raw template by keys. */
function find(token: Token | undefined, ...keys: string[]): Token | undefined {
  let current = token;
  for (const key of keys) {
    if (!current || current.templateTokenType !== T.Mapping) return undefined;
    current = current.find!(key);
  }
  return current;
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `    | ${line}`)
    .join('\n');
}

export { WorkflowError };
