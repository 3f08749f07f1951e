export { sh, waitFor, tempDir, stopPid, processAlive } from './proc';
export { requirePart } from './parts';
export {
  startSshd,
  sshdConnectOptions,
  sshdActionInputs,
  freePort,
  freePortOutsideEphemeralRange,
  fingerprintOf,
  ensurePasswordUser,
  randomPassword,
} from './sshd';
export type { SshdOptions, SshdServer } from './sshd';
export { ensureDocker, DOCKERD_LOG } from './docker';
export type { DockerInfo } from './docker';
export { pushWithOwnLogin, startRegistry } from './registry';
export type { Registry } from './registry';
export {
  ensureBaseImages,
  ensureMariadbImage,
  ensurePostgres17BaseImage,
  POSTGRES17_BASE_IMAGE,
  BUSYBOX_IMAGE,
  DEBIAN_IMAGE,
  MARIADB_IMAGE,
  IMAGE_CACHE_DIR,
} from './images';
export type { BaseImages } from './images';
export { startPostgres } from './postgres';
export { makeServerCertificate } from './tls';
export type { Postgres } from './postgres';
export { startRedis } from './redis';
export type { Redis } from './redis';
export { createNetnsHost, linkPrivateNetwork } from './netns';
export type { NetnsHost, PrivateNetwork } from './netns';
export { startNetnsWebServer } from './netns-web';
export type { NetnsWebServer } from './netns-web';
export { startComposePostgres, ensureComposePostgresImage, COMPOSE_POSTGRES_IMAGE } from './compose-postgres';
export type { ComposePostgres } from './compose-postgres';
export { registryManifestDigest, MANIFEST_ACCEPT, withoutCliPlugins, SYSTEM_CLI_PLUGIN_DIR } from './docker-registry-api';
export { startS3 } from './s3';
export type { S3Server } from './s3';
export { spawnDaemon } from './proc';
export { ensureComposeV1 } from './compose-v1';
export type { ComposeV1 } from './compose-v1';
export { NODE24, bundlePath, parseFileCommands, applyMasks, commandErrors, runnerEnv, startBundle, runBundle, inputEnvName, setInputs } from './runner';
export type { RunnerEvent, RunnerEnvOptions, RunnerFiles, BundleOptions, BundleRun, StartedBundle } from './runner';
export { startMariadb } from './mariadb';
export type { Mariadb } from './mariadb';
export { ensureLoginUser } from './login-user';
export type { LoginUser, LoginUserOptions } from './login-user';
export { startSystemdHost, SYSTEMD_IMAGE } from './systemd-host';
export type { SystemdHost, SystemdHostOptions } from './systemd-host';
export { enableNetnsIpv6 } from './netns6';
export type { NetnsIpv6 } from './netns6';
export { startArtifactService } from './artifact-service';
export type { ArtifactService, StoredArtifact } from './artifact-service';
export { startRecordingServer } from './http-recorder';
export type { RecordedRequest, RecordedResponse, RecordingServer } from './http-recorder';
export { startNetnsDocker } from './netns-docker';
export type { NetnsDocker } from './netns-docker';
export { startCoolify } from './coolify';
export type { CoolifyResource, CoolifyDeployment, CoolifyServer } from './coolify';
export { startSwarmHost, machineEngineSwarmState } from './swarm-host';
export type { SwarmHost } from './swarm-host';
export { startDockerHost } from './docker-host';
export type { DockerHost, DockerHostOptions } from './docker-host';
export type { ArtifactRun } from './artifact-service';
export {
  POSTGRES_SEED_SQL,
  POSTGRES_CHECKSUM_SQL,
  MYSQL_SEED_SQL,
  MYSQL_CHECKSUM_SQL,
  REDIS_SEED_LUA,
  SQLITE_SEED_PY,
  SQLITE_CHECKSUM_PY,
  FILES_SEED_SH,
} from './realistic-data';
export { MODERN_ROOT, startModernHost } from './modern-host';
export type { ModernHost, ModernHostOptions } from './modern-host';
export { DOCKER_REPOSITORY_STANDIN, FRESH_SERVERS, serveDockerRepositoryStandin, startFreshHost } from './fresh-host';
export type { DockerRepositoryStandin, FreshDistribution, FreshHost, FreshHostOptions } from './fresh-host';
export { BUSYBOX_ARM64, QEMU_AARCH64, enableAarch64 } from './qemu';
export { startContainerPostgres, startContainerMariadb } from './container-databases';
export type { ContainerPostgres, ContainerMariadb } from './container-databases';
export { HUB_IMAGES, HUB_POSTGRES_17, HUB_MARIADB, HUB_PYTHON, ensureHubImages, ensureHubPostgres17, ensureHubMariadb, startHubMirror } from './hub';
export { CF_IPV4, CF_IPV6, JDCLOUD, answerFrom, cfBody, startFakeCloudflare } from './cloudflare';
export type { CfAnswer, FakeCloudflare } from './cloudflare';
export { startConnectProxy } from './connect-proxy';
export type { ConnectProxy } from './connect-proxy';
