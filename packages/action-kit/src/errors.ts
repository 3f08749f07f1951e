/**
 * A problem with how the workflow configured the action. Its message is written for the
 * person editing the workflow, so it is reported without a stack trace.
 */
export class InputError extends Error {
  /** The input (or inputs, for rules that combine several) the message is about. */
  readonly inputs: readonly string[];

  constructor(inputs: string | readonly string[], message: string) {
    super(message);
    this.name = 'InputError';
    this.inputs = typeof inputs === 'string' ? [inputs] : inputs;
  }
}

/** Several input errors found in one pass, so the workflow can be fixed in one edit. */
export class InputErrors extends InputError {
  readonly errors: readonly InputError[];

  constructor(errors: readonly InputError[]) {
    super(
      [...new Set(errors.flatMap((error) => error.inputs))],
      errors.length === 1 ? errors[0]!.message : `${errors.length} problems with the inputs:\n${errors.map((error) => `- ${error.message}`).join('\n')}`,
    );
    this.name = 'InputErrors';
    this.errors = errors;
  }
}

/** The input errors inside `error` (flattening InputErrors), or none if it is another kind of error. */
export function inputErrorsOf(error: unknown): InputError[] {
  if (error instanceof InputErrors) return error.errors.flatMap(inputErrorsOf);
  if (error instanceof InputError) return [error];
  return [];
}
