import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast. Integration tests start real servers (sshd, dockerd,
// registry, databases), so they get long timeouts and run one file at a time on 2 cores.
// The examples (test/examples/) each run on servers of their own — a modern Docker host in its
// own namespaces with its own registry and Docker Hub mirror — and mostly wait on those servers
// (pulls, health rounds, database work inside them), so two run side by side, after the rest.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'action-*/test/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['packages/*/test/**/*.int.test.ts', 'action-*/test/**/*.int.test.ts', 'test/**/*.int.test.ts'],
          exclude: ['test/examples/**', '**/node_modules/**'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'examples',
          include: ['test/examples/**/*.int.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: true,
          maxWorkers: 2,
          pool: 'forks',
        },
      },
    ],
  },
});
