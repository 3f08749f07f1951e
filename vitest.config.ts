import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

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
  // A fresh server of its own (own namespaces, cgroup and apt); most of its time is apt and boot.
  'action-deploy/test/prepare-fresh.int.test.ts',
];

// The side-by-side files, longest first as measured (README "How long npm test takes"): three
// workers end together when the longest start first. Vitest's own order needs durations cached
// by an earlier run, which a clean CI clone does not have; there it starts small files first and
// the longest last, so one worker ran alone for minutes at the end.
const LONGEST_FIRST = [
  'action-deploy/test/prepare-fresh.int.test.ts',
  'test/examples/one-vm-proxy.int.test.ts',
  'action-backup/test/modern.int.test.ts',
  'test/examples/two-vms-cloudflare.int.test.ts',
  'test/examples/droplet-db-and-files.int.test.ts',
  'packages/backup/test/real-size-postgres.int.test.ts',
  'packages/backup/test/real-size-sources.int.test.ts',
  'test/examples/coolify-managed-db.int.test.ts',
  'test/examples/python-systemd-sqlite.int.test.ts',
  'action-deploy/test/backup-before-deploy.int.test.ts',
  'packages/backup/test/s3.int.test.ts',
  'action-backup/test/managed-database.int.test.ts',
  'action-backup/test/managed-mariadb.int.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const at = LONGEST_FIRST.findIndex((path) => file.moduleId.endsWith(`/${path}`));
      return at === -1 ? LONGEST_FIRST.length : at;
    };
    // Projects keep their order; within one, files not listed keep vitest's (the sort is stable).
    const sorted = await super.sort(files);
    const projects = [...new Set(sorted.map((file) => file.project.name))];
    return projects.flatMap((name) => sorted.filter((file) => file.project.name === name).sort((a, b) => rank(a) - rank(b)));
  }
}

export default defineConfig({
  test: {
    sequence: { sequencer: LongestFirst },
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
