import { parse as parseYaml } from 'yaml';

/** Service → image reference, from the output of `compose config`. */
export function servicesFromConfig(configYaml: string): Record<string, string | undefined> {
  const config = (parseYaml(configYaml) ?? {}) as { services?: Record<string, { image?: string } | null> };
  const services: Record<string, string | undefined> = {};
  for (const [name, service] of Object.entries(config.services ?? {})) services[name] = service?.image;
  return services;
}

/** `registry:5000/app:tag@sha256:…` → `registry:5000/app`. */
export function repositoryOf(image: string): string {
  const withoutDigest = image.split('@')[0]!;
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

/**
 * Picks, for each image, the repo digest of its own repository (an image pulled under two names
 * has one per name). Images without one — built on the server, never pushed — stay as they are
 * and are reported as unpinned.
 */
export function pinImages(
  services: Readonly<Record<string, string | undefined>>,
  images: readonly string[],
  inspectOutput: string,
): { pinned: Record<string, string>; unpinned: string[] } {
  const lines = inspectOutput.split('\n').filter((line) => line.trim() !== '');
  const digestOf = new Map<string, string>();
  images.forEach((image, index) => {
    if (image.includes('@sha256:')) {
      digestOf.set(image, `${repositoryOf(image)}@${image.split('@')[1]}`);
      return;
    }
    let digests: string[] = [];
    try {
      digests = (JSON.parse(lines[index] ?? '[]') as string[] | null) ?? [];
    } catch {
      digests = [];
    }
    const repository = repositoryOf(image);
    const match = digests.find((digest) => repositoryOf(digest) === repository) ?? (digests.length === 1 ? digests[0] : undefined);
    if (match) digestOf.set(image, match);
  });
  const pinned: Record<string, string> = {};
  const unpinned: string[] = [];
  for (const [service, image] of Object.entries(services)) {
    if (image === undefined) continue;
    const digest = digestOf.get(image);
    if (digest) pinned[service] = digest;
    else {
      pinned[service] = image;
      unpinned.push(service);
    }
  }
  return { pinned, unpinned };
}
