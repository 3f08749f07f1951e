import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Why this exists: bundled actions cannot ship ssh2's native crypto addon, and its pure-JS
 * decipher allocates fresh ~32 KiB buffers for every packet. V8 frees those only when a
 * young-generation GC runs, and the little JS garbage a stream makes rarely triggers one, so
 * on a fast multi-GB stream ~100 MB of dead buffers pile up before V8 reacts. A minor GC every
 * few MiB (about a millisecond each) keeps a 500 MB stream near 100 MB RSS instead of 150-170.
 */
type Collect = (options?: { type: 'minor' | 'major' }) => void;
let collect: Collect | null | undefined;

function loadCollector(): Collect | null {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as Collect;
  } catch {
    return null;
  }
}

export const RECLAIM_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * Returns a counter to call with each chunk's size; it reclaims dead buffers every `everyBytes`.
 * `minor` suits buffers that die young (packets); `full` suits ones that live for seconds, like
 * multipart upload parts, which reach the old generation first.
 */
export function bufferReclaimer(everyBytes = RECLAIM_EVERY_BYTES, kind: 'minor' | 'full' = 'minor'): (bytes: number) => void {
  let sinceLast = 0;
  return (bytes) => {
    sinceLast += bytes;
    if (sinceLast < everyBytes) return;
    sinceLast = 0;
    collect ??= loadCollector();
    collect?.({ type: kind === 'minor' ? 'minor' : 'major' });
  };
}
