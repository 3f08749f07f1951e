import { describe, expect, it } from 'vitest';
import { InputCollector, InputError, InputErrors, NOT_READ } from '../src';

describe('InputCollector.take / known / result', () => {
  it('returns every value, an unset optional one as undefined, typed without NOT_READ', () => {
    const c = new InputCollector();
    const port = c.take(() => 22);
    const note = c.take((): string | undefined => undefined);
    const values = c.result({ port, note });
    expect(values).toEqual({ port: 22, note: undefined });
    const typed: number = values.port;
    expect(typed).toBe(22);
  });

  it('reports every failed reader together, and a dependent reader sees undefined instead of NOT_READ', () => {
    const c = new InputCollector();
    const dir = c.take((): string => {
      throw new InputError('project-dir', 'Input "project-dir" must be absolute');
    });
    expect(dir).toBe(NOT_READ);
    expect(c.known(dir)).toBeUndefined();
    const name = c.take(() => {
      throw new InputError('project-name', 'Input "project-name" is bad');
    });
    expect(() => c.result({ dir, name })).toThrow(InputErrors);
    expect(() => c.result({ dir, name })).toThrow(/project-dir[\s\S]*project-name/);
  });

  it('refuses NOT_READ left without an input error (a reader bug, not a user mistake)', () => {
    const c = new InputCollector();
    expect(() => c.result({ lost: NOT_READ })).toThrow('Inputs not read, with no input error to say why: lost');
  });

  it('lets errors that are not input errors through at once', () => {
    const c = new InputCollector();
    expect(() => c.take(() => JSON.parse('{'))).toThrow(SyntaxError);
  });
});
