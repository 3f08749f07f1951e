import * as core from '@actions/core';

export type OutputValue = string | number | boolean | readonly unknown[] | Record<string, unknown>;

/** Sets one output; objects and arrays are written as JSON so `fromJSON()` reads them back. */
export function setOutput(name: string, value: OutputValue): void {
  core.setOutput(name, typeof value === 'string' ? value : JSON.stringify(value));
}

/**
 * A setter that only accepts the outputs an action declares, so a renamed output in
 * action.yml cannot drift silently from the code: `const out = outputs<{ plan: string }>(); out.set('plan', text)`.
 */
export function outputs<T extends Record<string, OutputValue>>(): { set<K extends keyof T & string>(name: K, value: T[K]): void } {
  return { set: (name, value) => setOutput(name, value) };
}
