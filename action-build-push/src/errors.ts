import { CommandError } from './run-command';

export const PERMISSION_HINT =
  'add `permissions: packages: write` to the job, or grant this repository access to the package ' +
  '(package settings → Manage Actions access); with a personal token, give it the write:packages scope';

// What registries and docker print when credentials are wrong or lack rights (GHCR says `denied`, distribution says `unauthorized`).
const AUTH_FAILURE = /\b(unauthorized|denied|401|403|forbidden|authentication required|incorrect username or password)\b/i;

export function isAuthFailure(text: string): boolean {
  return AUTH_FAILURE.test(text);
}

/** Turns an auth failure from login or push into the fix, keeping the registry's own words. */
export function explainRegistryError(error: unknown, doing: string, registry: string): Error {
  if (!(error instanceof CommandError)) return error as Error;
  const said = `${error.result.stderr}\n${error.result.stdout}`;
  if (!isAuthFailure(said)) return new Error(`${doing} failed: ${error.message}`);
  return new Error(`${doing} was refused by ${registry} (not authorised): ${PERMISSION_HINT}.\n${error.message}`);
}
