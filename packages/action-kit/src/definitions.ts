/** One input as action.yml declares it; the source the action.yml files and READMEs are checked against. */
export interface InputDefinition {
  name: string;
  description: string;
  required: boolean;
  /** As written in action.yml (a string, like everything GitHub passes). */
  default?: string;
  secret?: boolean;
}
