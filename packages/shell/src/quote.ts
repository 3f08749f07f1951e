/**
 * The one function that turns a value into a POSIX shell word. Every value that reaches a
 * remote shell goes through here, so this is the only place quoting can go wrong.
 *
 * Words made only of characters no shell treats specially stay bare so plans stay readable.
 * `=` is deliberately not bare-safe: a bare `A=b` in command position would become a variable
 * assignment instead of a word.
 */
const BARE_SAFE = /^[A-Za-z0-9_@%+:,./-]+$/;

export function quote(value: string): string {
  if (value.includes('\0')) {
    // A NUL cannot travel in argv; silently truncating it would run something else.
    throw new Error('shell quote: a value contains a NUL byte, which no shell argument can carry');
  }
  if (value === '') return "''";
  if (BARE_SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
