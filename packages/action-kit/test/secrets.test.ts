import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { maskSecret, secretForms } from '../src/index';

let stdout: string[] = [];

beforeEach(() => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** The values registered with `::add-mask::`, with the workflow-command escaping undone. */
const masked = () =>
  stdout
    .filter((line) => line.startsWith('::add-mask::'))
    .map((line) => line.slice('::add-mask::'.length, -1).replaceAll('%0A', '\n').replaceAll('%0D', '\r').replaceAll('%25', '%'));

describe('maskSecret', () => {
  it('masks the value and its encoded forms', () => {
    const value = 'p@ss word/+?"x';
    maskSecret(value);
    expect(masked()).toEqual(
      expect.arrayContaining([
        value,
        Buffer.from(value).toString('base64'),
        Buffer.from(value).toString('base64url'),
        'p@ss word/+?\\"x',
        encodeURIComponent(value),
      ]),
    );
  });

  it('masks each line of a multi-line secret, escaped the way workflow commands need', () => {
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBexample\n}\n-----END OPENSSH PRIVATE KEY-----';
    maskSecret(key);
    const lines = masked();
    expect(lines).toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    expect(lines).toContain('QyNTUxOQAAACBexample');
    expect(lines).toContain(key);
    expect(stdout).toContain(`::add-mask::${key.replace(/\n/g, '%0A')}\n`);
    // A one-character line would blank `}` all over the log.
    expect(lines).not.toContain('}');
  });

  it('skips trivially short derived fragments but masks a short value itself', () => {
    expect(secretForms('abc')).toEqual(['abc']);
    expect(secretForms('ab\ncdefgh')).toContain('cdefgh');
    expect(secretForms('ab\ncdefgh')).not.toContain('ab');
  });

  it('does nothing for empty or missing values', () => {
    maskSecret('');
    maskSecret('   ');
    maskSecret(undefined);
    expect(stdout).toEqual([]);
  });

  it('masks each form once', () => {
    const forms = secretForms('plainvalue123');
    expect(new Set(forms).size).toBe(forms.length);
  });
});
