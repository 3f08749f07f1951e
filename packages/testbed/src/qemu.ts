import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requirePart } from './parts';
import { sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';

/** Static qemu-aarch64 from sid's qemu-user and an arm64 busybox, unpacked by scripts/setup-testbed.sh. */
export const QEMU_AARCH64 = '/var/cache/skiff-testbed/qemu-aarch64';
export const BUSYBOX_ARM64 = '/var/cache/skiff-testbed/busybox-arm64';

const ENTRY = 'skiff-aarch64';
// The ELF header of an aarch64 executable, and which of its bytes to compare (binfmt_misc's format).
const MAGIC = '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00';
const MASK = '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';

/**
 * Lets this machine run aarch64 binaries for a while, as a builder needs for an arm64 `RUN`.
 * binfmt_misc is not mounted here, and unmounting it flushes its entries, so a holder process
 * mounts it in a mount namespace of its own, registers qemu-aarch64 with flags POCF (F: the
 * kernel opens the interpreter now, so containers with their own root find it; P: argv[0] kept,
 * which busybox needs) and sleeps. `stop()` removes the entry, then the holder.
 */
export async function enableAarch64(): Promise<{ stop(): Promise<void> }> {
  await requirePart('qemu-aarch64 (scripts/setup-testbed.sh)', ['test', '-x', QEMU_AARCH64]);
  const dir = await tempDir('binfmt');
  const script = [
    'set -e',
    'mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc',
    `[ -e /proc/sys/fs/binfmt_misc/${ENTRY} ] && echo -1 > /proc/sys/fs/binfmt_misc/${ENTRY}`,
    `printf '%s' ':${ENTRY}:M::${MAGIC}:${MASK}:${QEMU_AARCH64}:POCF' > /proc/sys/fs/binfmt_misc/register`,
    'echo registered',
    'exec sleep 86400',
  ].join('\n');
  const holder = spawnDaemon('binfmt_misc holder', 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    logPath: join(dir.path, 'holder.log'),
  });
  const stop = async () => {
    await sh('nsenter', [
      '-t',
      String(holder),
      '-m',
      'sh',
      '-c',
      `[ ! -e /proc/sys/fs/binfmt_misc/${ENTRY} ] || echo -1 > /proc/sys/fs/binfmt_misc/${ENTRY}`,
    ]).catch(() => '');
    await stopPid(holder);
    await dir.remove();
  };
  try {
    await waitFor(
      'qemu-aarch64 in binfmt_misc',
      async () => (await readFile(join(dir.path, 'holder.log'), 'utf8').catch(() => '')).includes('registered'),
      10_000,
      50,
    );
    const arch = (await sh(BUSYBOX_ARM64, ['uname', '-m'])).trim();
    if (arch !== 'aarch64') throw new Error(`test bed: the arm64 busybox says ${arch} under qemu`);
  } catch (error) {
    const log = await readFile(join(dir.path, 'holder.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(error as Error).message}\n${log}`);
  }
  return { stop };
}
