/** Platforms BuildKit can target; a typo here would otherwise surface minutes into a build. */
export const KNOWN_PLATFORMS: readonly string[] = [
  'linux/amd64',
  'linux/amd64/v2',
  'linux/amd64/v3',
  'linux/arm64',
  'linux/arm64/v8',
  'linux/arm/v7',
  'linux/arm/v6',
  'linux/386',
  'linux/ppc64le',
  'linux/s390x',
  'linux/riscv64',
  'linux/mips64le',
  'windows/amd64',
];

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm/v7', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The runner's own platform, the one a smoke test can run. */
export function runnerPlatform(arch: string = process.arch): string {
  return `linux/${NODE_ARCH[arch] ?? arch}`;
}
