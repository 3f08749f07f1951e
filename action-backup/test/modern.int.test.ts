import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMPOSE_POSTGRES_IMAGE,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  REDIS_SEED_LUA,
  ensureBaseImages,
  ensureComposePostgresImage,
  runBundle,
  startModernHost,
  type ModernHost,
  sshdActionInputs,
} from '@skiff/testbed';

/**
 * action-backup on the server users have today (Docker 28.5, Compose 2.40, containerd image
 * store): PostgreSQL (~60 MB) and Redis (~55 MB) in Compose services, dumped through Compose
 * 2.40's `docker compose exec -T`, verified on the server, drilled and restored, compared.
 */

const PROJECT = 'shop';
const DIR = '/opt/shop';
let host: ModernHost;

const compose = (...args: string[]) => host.exec(['docker', 'compose', '-p', PROJECT, '--project-directory', DIR, ...args], { timeoutMs: 300_000 });
const psql = (database: string, sql: string) => compose('exec', '-T', 'db', 'psql', '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql);

const backup = (inputs: Record<string, string>) =>
  runBundle('action-backup', {
    inputs: { ...sshdActionInputs(host), destination: 'host', 'destination-path': '/var/backups/skiff', ...inputs },
    timeoutMs: 170_000,
  });

const SOURCES = [
  `- type: postgres\n  name: shopdb\n  service: db\n  project: ${PROJECT}\n  project-directory: ${DIR}\n  database: shop\n  user: postgres`,
  `- type: redis\n  name: cache\n  service: cache\n  project: ${PROJECT}\n  project-directory: ${DIR}`,
].join('\n');

let checksum = '';
let redisKeys = 0;

beforeAll(async () => {
  const { debian } = await ensureBaseImages();
  await ensureComposePostgresImage();
  host = await startModernHost('skiff-modern-backup', { imageStore: 'containerd' });
  await host.loadImage(COMPOSE_POSTGRES_IMAGE);
  await host.loadImage(debian);
  await host.exec(['sh', '-c', `mkdir -p ${DIR} && cat > ${DIR}/compose.yaml`], {
    input: [
      'services:',
      '  db:',
      `    image: ${COMPOSE_POSTGRES_IMAGE}`,
      '    healthcheck:',
      '      test: ["CMD", "pg_isready", "-h", "/tmp"]',
      '      interval: 1s',
      '  cache:',
      `    image: ${debian}`,
      '    command: ["redis-server", "--save", "", "--appendonly", "no", "--dir", "/data", "--protected-mode", "no"]',
      '    volumes:',
      '      - cache:/data',
      'volumes:',
      '  cache: {}',
      '',
    ].join('\n'),
  });
  await compose('up', '-d', '--wait');
  await psql('postgres', 'create database shop');
  await compose('exec', '-T', 'db', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'shop', '-c', POSTGRES_SEED_SQL);
  checksum = await psql('shop', POSTGRES_CHECKSUM_SQL);
  redisKeys = Number((await compose('exec', '-T', 'cache', 'redis-cli', 'eval', REDIS_SEED_LUA, '0')).trim());
}, 600_000);

afterAll(async () => {
  await host?.stop();
});

describe('action-backup on Docker 28.5 / Compose 2.40 (containerd image store)', () => {
  it('holds data of real size: ~60 MB PostgreSQL, ~55 MB Redis', async () => {
    expect(Number(host.versions.docker.split('.')[0])).toBeGreaterThanOrEqual(28);
    expect(Number(await psql('shop', "select pg_database_size('shop')"))).toBeGreaterThan(50 * 1024 * 1024);
    expect(redisKeys).toBeGreaterThan(60_000);
    expect(Number((await compose('exec', '-T', 'cache', 'redis-cli', 'info', 'memory')).match(/used_memory:(\d+)/)?.[1])).toBeGreaterThan(40 * 1024 * 1024);
  });

  it('backs up both through compose exec, verified on the server; a drill restores them and counts the same', async () => {
    const run = await backup({ sources: SOURCES });
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.verified).toBe('true');
    const sizes = (await host.exec(['sh', '-c', 'find /var/backups/skiff -type f ! -name "*.json" -printf "%s %f\\n"'])).trim().split('\n');
    expect(sizes).toHaveLength(2);
    for (const line of sizes) expect(Number(line.split(' ')[0])).toBeGreaterThan(10 * 1024 * 1024);

    const drill = await backup({ sources: SOURCES, mode: 'drill' });
    expect(drill.code, drill.masked).toBe(0);
    // The row counts of the restored copy, as the summary table shows them (| escaped).
    expect(drill.summary).toContain('public.customers\\|250000');
    expect(drill.summary).toContain('public.events\\|200000');
    expect(drill.summary).toMatch(/\| cache \| cache-\d{8}T\d{6}Z \| passed \|/);
  });

  it('restores PostgreSQL into a new database with identical rows', async () => {
    const run = await backup({ sources: SOURCES.split('\n- ')[0]!, mode: 'restore', 'restore-target': 'shop_restored' });
    expect(run.code, run.masked).toBe(0);
    expect(await psql('shop_restored', POSTGRES_CHECKSUM_SQL)).toBe(checksum);
  });
});
