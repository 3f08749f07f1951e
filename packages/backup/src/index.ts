export { decideRetention, RetentionRefused } from './retention';
export type { RetentionPolicy, Dated, RetentionDecision } from './retention';
