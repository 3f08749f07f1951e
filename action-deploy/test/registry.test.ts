import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { ACTION_INPUTS, readDeployInputs } from '../src/inputs';
import { STRATEGIES, STRATEGY_REGISTRY, hostStrategy } from '../src/strategies';
import { useInputsWorkspace } from './inputs-workspace';

const ssh = { host: 'example.com', username: 'deploy', password: 'pw-123456', 'insecure-ignore-host-key': 'true' };
/** A value each strategy input accepts in form, so only "which strategy" can make it an error. */
const SAMPLE: Record<string, string> = { 'coolify-url': 'https://coolify.example.com', 'coolify-token': '1|abcdef', 'coolify-uuid': 'abc123' };

describe('the strategy registry', () => {
  useInputsWorkspace({ repository: 'acme/shop', files: { 'compose.yaml': 'services:\n  web:\n    image: app\n' } });

  it('has an entry for every strategy; each SSH strategy is made fresh for each host run, with the settings its inputs read into', () => {
    expect(STRATEGIES).toEqual(['recreate', 'rolling', 'swarm', 'systemd', 'coolify']);
    for (const name of STRATEGIES) expect(typeof STRATEGY_REGISTRY[name].host).toBe(name === 'coolify' ? 'undefined' : 'function');
    setInputs({ ...ssh, strategy: 'rolling', 'rolling-drain': '7s' });
    const chosen = readDeployInputs().strategy;
    expect(chosen).toEqual({ name: 'rolling', settings: { drainSeconds: 7 } });
    const one = hostStrategy(chosen);
    expect(one).not.toBe(hostStrategy(chosen));
    expect(typeof one.switchOn).toBe('function');
  });

  it("puts every strategy's own inputs in action.yml's list", () => {
    const declared = ACTION_INPUTS.map((input) => input.name);
    for (const entry of Object.values(STRATEGY_REGISTRY)) for (const input of entry.inputs) expect(declared).toContain(input.name);
  });

  it("refuses, by name, any strategy's own input set with another strategy", () => {
    const owned = Object.entries(STRATEGY_REGISTRY).flatMap(([owner, entry]) => entry.inputs.map((input) => ({ owner, name: input.name })));
    expect(owned.length).toBeGreaterThan(8);
    for (const { owner, name } of owned) {
      const other = owner === 'recreate' ? 'swarm' : 'recreate';
      setInputs({ ...ssh, strategy: other, [name]: SAMPLE[name] ?? 'some-value' });
      expect(() => readDeployInputs(), `${name} with strategy ${other}`).toThrow(
        new RegExp(`"${name}"[^\\n]*(not used by strategy: ${other}|only applies with strategy: ${owner})`),
      );
    }
  });
});
