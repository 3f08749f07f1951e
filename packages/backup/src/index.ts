export { decideRetention, RetentionRefused } from './retention';
export type { RetentionPolicy, Dated, RetentionDecision } from './retention';
export {
  parseSources,
  parseConnectionUrl,
  defaultCompression,
  reachableFromRunner,
  runnerOnlyFields,
  SOURCE_TYPES,
  SSL_MODES,
  DEFAULT_CLIENT_IMAGE,
  SourceError,
} from './sources';
export type { Source, SourceType, Place, Compression, SslMode, RunnerSide } from './sources';
export {
  prepareRunnerSources,
  startScratchServer,
  pgMajor,
  majorFromVersionNum,
  toolVersion,
  clientImageFor,
  mysqlServer,
  mysqlToolVersion,
} from './runner-side';
export type { RunnerClient, RunnerSources, ScratchServer } from './runner-side';
export { inPlace, withContainerSecret, envFromFile } from './place';
export { dumpCommand, globalsCommand, pgTool, hostTool, secretFileContent, toolVersionCommand, SQLITE_SNAPSHOT_SCRIPT } from './tools';
export { FORMATS, GLOBALS_FORMAT, storedExtension, backupId } from './formats';
export type { Format } from './formats';
export { parseManifest, serializeManifest } from './manifest';
export type { Manifest } from './manifest';
export { BackupFailed } from './store';
export type { Store, BackupRequest, RawData } from './store';
export { HostStore, hostBackupScript, verification, globalsLines } from './host-store';
export {
  prepareTargetScript,
  restoreCommand,
  filesInPlace,
  describeTarget,
  FILES_IN_PLACE_SCRIPT,
  PREVIOUS_DIR,
  REDIS_RESTORE_SCRIPT,
  redisRdbPath,
  drillQueryCommand,
  REDIS_DRILL_SCRIPT,
  SQLITE_DRILL_SCRIPT,
  dropScratchCommand,
  scratchTarget,
  PG_ROW_COUNTS,
  DRILL_PREFIX,
  REFUSED_EXIT,
  existingGlobalsQuery,
  parseExistingGlobals,
  applyGlobalsCommand,
  GLOBALS_FILTER_AWK,
} from './restore';
export { TarWalker, TarError } from './tar-walker';
export type { TarSummary } from './tar-walker';
export type { RestoreTarget, InPlaceStep } from './restore';
export { backupSource, pruneSource, findBackup, restoreBackup, drillSource, withSecretFile } from './operations';
export type { BackupOptions, BackupResult, RestoreResult } from './operations';
// The runner destinations load the S3 SDK, age and @actions/artifact: import them from
// '@skiff/backup/s3' and '@skiff/backup/artifact' (lazily), so a host backup never pays for them.
export type { S3Settings } from './s3-store';
export { structureCheck, trailerCheck, SQLITE_LENGTH_CHECK, VERIFY_EXIT } from './verify';
export type { StreamCheck } from './verify';
