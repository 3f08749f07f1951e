import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast. Integration tests start real servers (sshd, dockerd,
// registry, databases), so they get long timeouts and run one file at a time on 2 cores.
// SIDE_BY_SIDE files run three at a time, after the others: each starts servers of its own under
// names no other file uses, none has a timing-sensitive check (no load test, no health timeout
// under a minute), and they spend most of their time waiting on those servers — pulls, database
// dumps and restores at real sizes, the examples' whole workflows.
const SIDE_BY_SIDE = [
  'test/examples/**/*.int.test.ts',
  'packages/backup/test/real-size-postgres.int.test.ts',
  'packages/backup/test/real-size-sources.int.test.ts',
  // Backups through their own sshd, database and store, checked by content only.
  'packages/backup/test/s3.int.test.ts',
  'packages/backup/test/artifact.int.test.ts',
  'packages/backup/test/globals.int.test.ts',
  'packages/backup/test/files.int.test.ts',
  'action-backup/test/modern.int.test.ts',
  'action-backup/test/managed-database.int.test.ts',
  'action-backup/test/managed-mariadb.int.test.ts',
  'action-deploy/test/backup-before-deploy.int.test.ts',
];

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
          exclude: [...SIDE_BY_SIDE, '**/node_modules/**'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'side-by-side',
          include: SIDE_BY_SIDE,
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: true,
          // Three at a time on two cores: they wait on their servers far more than they compute.
          maxWorkers: 3,
          pool: 'forks',
        },
      },
    ],
  },
});
