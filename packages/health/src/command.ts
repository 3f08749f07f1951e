import type { Probe } from './gate';

/** A probe over a command run elsewhere (e.g. on the server): exit 0 is ok, anything else is "not yet". */
export function commandProbe(name: string, run: () => Promise<{ code: number; stdout: string; stderr: string }>): Probe {
  return {
    name,
    async check() {
      const result = await run();
      const output = (result.stderr.trim() || result.stdout.trim()).split('\n').at(-1) ?? '';
      return result.code === 0 ? { state: 'ok', detail: 'exit 0' } : { state: 'waiting', detail: `exit ${result.code}${output ? `: ${output}` : ''}` };
    },
  };
}
