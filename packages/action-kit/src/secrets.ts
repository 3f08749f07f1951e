import * as core from '@actions/core';

/**
 * Derived fragments shorter than this are not masked: masking e.g. a `}` line of a JSON key
 * file would blank that character all over the log and protect nothing.
 */
const MIN_FRAGMENT_LENGTH = 6;

/**
 * Every form in which `value` could plausibly reach the log. The runner masks exact
 * substrings only, so a multi-line secret printed line by line, or a token that some tool
 * echoes base64-encoded, JSON-escaped or URL-encoded, would otherwise leak.
 */
export function secretForms(value: string): string[] {
  if (value.trim() === '') return [];
  const forms = new Set<string>([value]);
  const derived: string[] = [];
  if (/[\r\n]/.test(value)) {
    for (const line of value.split(/\r?\n|\r/)) derived.push(line, line.trim());
  }
  const bytes = Buffer.from(value, 'utf8');
  derived.push(
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    JSON.stringify(value).slice(1, -1),
    encodeURIComponent(value),
  );
  for (const form of derived) {
    if (form.trim().length >= MIN_FRAGMENT_LENGTH) forms.add(form);
  }
  return [...forms];
}

/** Registers `value` and its derived forms with the runner's log masker. */
export function maskSecret(value: string | undefined): void {
  if (value === undefined) return;
  for (const form of secretForms(value)) core.setSecret(form);
}
