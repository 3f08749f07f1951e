export { runGate, wakeCounter } from './gate';
export type { Probe, ProbeOutcome, GateOptions, GateResult, ProbeReport, Wake } from './gate';
export { parseStatusRange, checkHttp, httpProbe } from './http';
export type { StatusRange, HttpCheck } from './http';
export { parseInspect, evaluateContainers, containerProbe } from './containers';
export type { ContainerState, ContainerExpectations } from './containers';
export { commandProbe } from './command';
