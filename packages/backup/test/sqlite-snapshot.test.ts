import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SQLITE_SNAPSHOT_SCRIPT } from '../src/tools';

// One note every 5 ms from another process, as an app does, for at most 300 s or until told to stop.
const WRITER = `
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
written, end = 0, time.time() + 300
while time.time() < end and not os.path.exists(sys.argv[2]):
    db.execute("insert into notes (body, author) values ('live', 'writer')")
    written += 1
    time.sleep(0.005)
print(written, flush=True)
`;

const count = (db: string) => Number(execFileSync('sqlite3', [db, 'select count(*) from notes'], { encoding: 'utf8' }).trim());

describe('the SQLite snapshot', () => {
  it('is taken while another process keeps writing to the database (WAL), and is one consistent moment of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-live-'));
    const db = join(dir, 'app.db');
    const stop = join(dir, 'stop');
    try {
      // ~30 MB of mixed types: large enough that a copy in steps sees the writer's commits.
      execFileSync('sqlite3', [
        db,
        'pragma journal_mode = wal; create table notes (id integer primary key, body text, author text, score real, attachment blob); ' +
          "with recursive n(i) as (select 1 union all select i + 1 from n where i < 150000) insert into notes (body, author, score, attachment) select hex(randomblob(60)), 'user' || (i % 977), i * 0.37, randomblob(64) from n",
      ]);
      const seeded = count(db);
      const writer = spawn('python3', ['-c', WRITER, db, stop], { stdio: ['ignore', 'pipe', 'inherit'] });
      let written = '';
      writer.stdout.on('data', (chunk: Buffer) => (written += chunk.toString()));
      const exited = new Promise<void>((resolve) => writer.on('close', () => resolve()));
      try {
        for (let tries = 0; count(db) < seeded + 20; tries++) {
          if (tries > 200) throw new Error('the writer stored fewer than 20 notes in 10 s');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const before = count(db);
        // SQLite's stepwise .backup starts over after every commit of another process: while an
        // app writes, it never ends (here: until spawnSync gives up after 90 s).
        const snapshot = spawnSync('sh', ['-c', SQLITE_SNAPSHOT_SCRIPT, 'sh', db], { maxBuffer: 256 * 1024 * 1024, timeout: 90_000 });
        const after = count(db);
        expect(snapshot.status, `${snapshot.error?.message ?? ''} ${snapshot.stderr.toString()}`).toBe(0);
        // The writer wrote on all along: it is still writing now.
        let stillWriting = false;
        for (let tries = 0; !stillWriting && tries < 60; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          stillWriting = count(db) > after;
        }
        expect(stillWriting).toBe(true);
        const copy = join(dir, 'copy.db');
        writeFileSync(copy, snapshot.stdout);
        expect(execFileSync('sqlite3', [copy, 'pragma integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
        const copied = count(copy);
        expect(copied).toBeGreaterThanOrEqual(before);
        expect(copied).toBeLessThanOrEqual(after);
      } finally {
        writeFileSync(stop, '');
        await exited;
      }
      expect(Number(written.trim())).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
