/**
 * Data that stands for a user's: tens of MB of mixed types with random content (not one
 * repeated string, which compresses to nothing and fits a pipe buffer), so a backup test moves
 * what a real backup moves. Every generator is deterministic in shape and size, random in content.
 */

/** ~60 MB in PostgreSQL (table + TOAST), 250,000 + 200,000 rows: text, numeric, timestamps, jsonb, bytea, arrays, nulls. */
export const POSTGRES_SEED_SQL = [
  'create table customers (id bigint primary key, email text not null, name text, created timestamptz, balance numeric(12,2), active boolean, prefs jsonb, tags text[])',
  "insert into customers select g, md5(random()::text) || '@example.com', initcap(substr(md5(random()::text), 1, 6 + (g % 9))) || ' ' || initcap(substr(md5(random()::text), 1, 8)), " +
    "timestamptz '2020-01-01' + random() * interval '2000 days', round((random() * 100000)::numeric, 2), random() > 0.3, " +
    "jsonb_build_object('theme', (array['dark', 'light', 'auto'])[1 + g % 3], 'visits', floor(random() * 1000), 'ref', case when g % 7 = 0 then null else md5(g::text) end), " +
    'array[substr(md5(random()::text), 1, 5), substr(md5(random()::text), 1, 7)] from generate_series(1, 250000) g',
  'create table events (id bigserial primary key, customer_id bigint references customers, kind text, payload bytea, amount double precision, at timestamp, note text)',
  "insert into events (customer_id, kind, payload, amount, at, note) select 1 + floor(random() * 250000)::bigint, (array['view', 'cart', 'buy', 'refund'])[1 + floor(random() * 4)::int], " +
    "decode(md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex'), random() * 500, timestamp '2024-01-01' + random() * interval '365 days', " +
    'case when g % 5 = 0 then null else repeat(md5(random()::text), 1 + g % 3) end from generate_series(1, 200000) g',
  'create index events_customer on events (customer_id)',
].join(';\n');

/** Per table: `table|rows|md5 of every row in key order`, the identity a restore must reproduce. */
export const POSTGRES_CHECKSUM_SQL =
  "select line from (select 'customers|' || count(*) || '|' || md5(string_agg(c::text, E'\\n' order by id)) as line from customers c union all " +
  "select 'events|' || count(*) || '|' || md5(string_agg(e::text, E'\\n' order by id)) from events e) sums order by line";

/** ~55 MB in MariaDB: varchar, text, decimal, datetime, blob, json, nulls. */
export const MYSQL_SEED_SQL = [
  'create table customers (id int primary key, email varchar(64) not null, name varchar(40), created datetime, balance decimal(12,2), active tinyint(1), prefs json, avatar blob)',
  "insert into customers select seq, concat(md5(rand()), '@example.com'), concat(substr(md5(rand()), 1, 6 + seq % 9), ' ', substr(md5(rand()), 1, 8)), " +
    "timestamp('2020-01-01') + interval floor(rand() * 172800000) second, round(rand() * 100000, 2), rand() > 0.3, " +
    "json_object('theme', elt(1 + seq % 3, 'dark', 'light', 'auto'), 'visits', floor(rand() * 1000)), " +
    'if(seq % 4 = 0, null, unhex(concat(md5(rand()), md5(rand()), md5(rand()), md5(rand())))) from seq_1_to_200000',
  'create table events (id int auto_increment primary key, customer_id int, kind varchar(8), amount double, at datetime, note text, key (customer_id))',
  "insert into events (customer_id, kind, amount, at, note) select 1 + floor(rand() * 200000), elt(1 + floor(rand() * 4), 'view', 'cart', 'buy', 'refund'), rand() * 500, " +
    "timestamp('2024-01-01') + interval floor(rand() * 31536000) second, if(seq % 5 = 0, null, repeat(md5(rand()), 1 + seq % 3)) from seq_1_to_250000",
].join(';\n');

/** Per table: `table|rows|md5`. group_concat's limit is raised for the session so nothing is cut. */
export const MYSQL_CHECKSUM_SQL =
  'set session group_concat_max_len = 1073741824; ' +
  "select line from (select concat('customers|', count(*), '|', md5(group_concat(concat_ws('/', id, email, name, created, balance, active, prefs, hex(avatar)) order by id separator '\\n'))) as line from customers " +
  "union all select concat('events|', count(*), '|', md5(group_concat(concat_ws('/', id, customer_id, kind, amount, at, note) order by id separator '\\n'))) from events) sums order by line";

/**
 * A Lua script for `redis-cli --eval`: ~55 MB of strings, hashes, lists, sets and sorted sets
 * with pseudo-random content (Redis seeds math.random itself; the content only needs to vary).
 */
export const REDIS_SEED_LUA = `
local function blob(n)
  local parts = {}
  for i = 1, n do parts[i] = string.format('%08x', math.random(0, 2147483647)) end
  return table.concat(parts)
end
for i = 1, 60000 do
  redis.call('SET', 'session:' .. i, blob(40 + i % 50))
  if i % 3 == 0 then redis.call('HSET', 'user:' .. i, 'name', blob(2), 'email', blob(4), 'visits', tostring(i % 977), 'bio', blob(30)) end
  if i % 10 == 0 then redis.call('RPUSH', 'feed:' .. (i % 500), blob(20), blob(20), blob(20)) end
  if i % 7 == 0 then redis.call('SADD', 'tags:' .. (i % 300), blob(1), blob(1)) end
  if i % 5 == 0 then redis.call('ZADD', 'scores', math.random(0, 1000000), 'player:' .. i) end
end
return redis.call('DBSIZE')
`;

/**
 * A Python script that writes a ~55 MB SQLite database (two tables, mixed types, an index),
 * argv[1] = path. Python's sqlite3 module is on the test bed (python3 is in every image we build).
 */
export const SQLITE_SEED_PY = `
import os, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute('create table notes (id integer primary key, title text, body text, score real, created text, attachment blob)')
db.execute('create table tags (id integer primary key, note_id integer, tag text)')
rows = ((i, os.urandom(8).hex(), os.urandom(60 + i % 80).hex(), random.random() * 100, '2024-%02d-%02d' % (1 + i % 12, 1 + i % 28), os.urandom(64) if i % 3 else None) for i in range(1, 150001))
db.executemany('insert into notes values (?, ?, ?, ?, ?, ?)', rows)
db.executemany('insert into tags (note_id, tag) values (?, ?)', ((1 + i % 150000, os.urandom(4).hex()) for i in range(200000)))
db.execute('create index tags_note on tags (note_id)')
db.commit()
db.close()
`;

/** Per table `table|rows|md5` of every row, computed by Python over a file path (argv[1]). */
export const SQLITE_CHECKSUM_PY = `
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table in ('notes', 'tags'):
    h = hashlib.md5(); n = 0
    for row in db.execute('select * from %s order by id' % table):
        h.update(repr(row).encode()); n += 1
    print('%s|%d|%s' % (table, n, h.hexdigest()))
`;

/** A shell script that fills a directory (argv[1]) with ~55 MB of files of mixed sizes, nested, random content. */
export const FILES_SEED_SH = `
set -eu
root=$1
mkdir -p "$root/uploads" "$root/uploads/2024" "$root/cache/a/b"
i=0
while [ $i -lt 400 ]; do
  head -c $(( (i % 40) * 4096 + 100 )) /dev/urandom > "$root/uploads/2024/file-$i.bin"
  i=$((i + 1))
done
head -c 20000000 /dev/urandom > "$root/uploads/video.mp4"
head -c 3000000 /dev/urandom | base64 > "$root/cache/a/b/page.html"
printf 'plain text\\n' > "$root/README.txt"
`;
