export { quote } from './quote';
export { raw, isRaw, render, pipe, and, or, subshell, readToEnd, redirectTo, redirectFrom } from './command';
export type { Raw, Token, Command } from './command';
export { script, remoteCommandLine, isTimeoutExit, STRICT_MODE, KILL_GRACE_SECONDS } from './script';
export type { RemoteInvocation } from './script';
export { RemoteCommandError, RemoteTimeoutError } from './executor';
export type { Executor, RunOptions, ExecResult, UploadOptions } from './executor';
export { PlanRecorder } from './plan';
export type { PlanStep } from './plan';
