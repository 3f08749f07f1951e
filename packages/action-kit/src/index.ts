export { InputError, InputErrors, inputErrorsOf } from './errors';
export type { InputDefinition } from './definitions';
export {
  rawInput,
  invalidInput,
  missingInput,
  getString,
  getList,
  getBoolean,
  getInteger,
  getPort,
  getEnum,
  getDuration,
  parseDuration,
  InputCollector,
  NOT_READ,
  readInputs,
} from './inputs';
export type { ReadOptions, ReadResult, IntegerOptions, DurationOptions, Taken } from './inputs';
export { maskSecret, secretForms } from './secrets';
export { SSH_INPUTS, readSshInputs, parseJumpHost, keyscanCommand, sshLog, liveLog } from './ssh-inputs';
export type { SshInputName } from './ssh-inputs';
export { setOutput, outputs } from './outputs';
export type { OutputValue } from './outputs';
export { table, codeBlock, inlineCode, details, escapeHtml, renderPlan, writeSummary } from './summary';
export { DRY_RUN_INPUT, readDryRun, publishPlan } from './dry-run';
export { BASE_PREFLIGHT, checkServer, runPreflight, renderPreflight, formatPreflightLog } from './preflight';
export type { PreflightCheck, PreflightResult } from './preflight';
export { runAction, failureMessage, notImplemented } from './entry';
export type { ActionPhases, RunActionOptions } from './entry';
export { parseHostEntry, parseHostList, hostLabel, MULTI_HOST_INPUTS, readSshTargets, readRunMode, forEachHost, hostFailures } from './hosts';
export type { HostAddress, RunMode, HostResult, HostContext } from './hosts';
export { webhookKind, webhookPayload, sendNotification } from './notify';
export type { Notification, WebhookKind } from './notify';
