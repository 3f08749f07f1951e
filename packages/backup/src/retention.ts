/**
 * Which backups to keep, decided from their manifests' times (never file mtimes, which copies
 * and restores change). Buckets are calendar days, ISO weeks, months and years in UTC, so the
 * answer does not depend on the runner's time zone.
 */
export interface RetentionPolicy {
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Keep everything newer than this many days (instead of, or on top of, GFS). */
  keepDays?: number;
  /** Never keep fewer than this many of the newest backups. Default 3. */
  minKeep?: number;
}

export interface Dated {
  id: string;
  /** ISO 8601 time the backup was taken. */
  time: string;
}

export interface RetentionDecision<T extends Dated> {
  keep: { backup: T; reasons: string[] }[];
  prune: T[];
}

export class RetentionRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetentionRefused';
  }
}

const DAY_MS = 86_400_000;

function isoWeek(date: Date): string {
  // ISO 8601: the week with the year's first Thursday is week 1; weeks start on Monday.
  const thursday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  thursday.setUTCDate(thursday.getUTCDate() + 3 - ((thursday.getUTCDay() + 6) % 7));
  const firstThursday = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
  const week = 1 + Math.round((thursday.getTime() - firstThursday.getTime()) / DAY_MS / 7 - (3 - ((firstThursday.getUTCDay() + 6) % 7)) / 7);
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

const BUCKETS: { rule: keyof RetentionPolicy; name: string; bucketOf: (date: Date) => string }[] = [
  { rule: 'keepDaily', name: 'daily', bucketOf: (d) => d.toISOString().slice(0, 10) },
  { rule: 'keepWeekly', name: 'weekly', bucketOf: isoWeek },
  { rule: 'keepMonthly', name: 'monthly', bucketOf: (d) => d.toISOString().slice(0, 7) },
  { rule: 'keepYearly', name: 'yearly', bucketOf: (d) => d.toISOString().slice(0, 4) },
];

function timeOf(backup: Dated): number {
  const time = Date.parse(backup.time);
  if (Number.isNaN(time)) throw new RetentionRefused(`backup ${backup.id} has no valid time (${JSON.stringify(backup.time)}); refusing to prune`);
  return time;
}

/**
 * Grandfather-father-son: for each rule, the newest backup of each of the N most recent
 * buckets that have one; the `minKeep` newest are kept whatever the rules say. A decision that
 * would delete every backup is refused: that is a misconfiguration, never an intent.
 */
export function decideRetention<T extends Dated>(backups: readonly T[], policy: RetentionPolicy, now: Date): RetentionDecision<T> {
  const newestFirst = [...backups].sort((a, b) => timeOf(b) - timeOf(a) || b.id.localeCompare(a.id));
  const reasons = new Map<T, string[]>();
  const keep = (backup: T, reason: string) => reasons.set(backup, [...(reasons.get(backup) ?? []), reason]);

  for (const { rule, name, bucketOf } of BUCKETS) {
    const count = policy[rule] ?? 0;
    if (count <= 0) continue;
    const seen = new Set<string>();
    for (const backup of newestFirst) {
      const bucket = bucketOf(new Date(timeOf(backup)));
      if (seen.has(bucket)) continue;
      seen.add(bucket);
      keep(backup, `${name} ${bucket}`);
      if (seen.size >= count) break;
    }
  }
  if (policy.keepDays !== undefined && policy.keepDays > 0) {
    const cutoff = now.getTime() - policy.keepDays * DAY_MS;
    for (const backup of newestFirst) if (timeOf(backup) >= cutoff) keep(backup, `within ${policy.keepDays} days`);
  }
  const minKeep = policy.minKeep ?? 3;
  newestFirst.slice(0, minKeep).forEach((backup, index) => keep(backup, `min-keep ${index + 1}/${minKeep}`));

  const kept = newestFirst.filter((backup) => reasons.has(backup));
  if (backups.length > 0 && kept.length === 0) {
    throw new RetentionRefused(`retention would delete all ${backups.length} backups; refusing to prune`);
  }
  return {
    keep: kept.map((backup) => ({ backup, reasons: reasons.get(backup)! })),
    prune: newestFirst.filter((backup) => !reasons.has(backup)),
  };
}
