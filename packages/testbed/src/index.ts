export { sh, waitFor, tempDir, stopPid } from './proc';
export { requirePart } from './parts';
export { startSshd, freePort, fingerprintOf, ensurePasswordUser, randomPassword } from './sshd';
export type { SshdOptions, SshdServer } from './sshd';
