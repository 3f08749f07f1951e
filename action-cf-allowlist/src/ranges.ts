import { isIP } from 'node:net';
import { parseCidr, uniqueSorted, type Cidr } from './cidr';

/** Cloudflare's ranges as this action applies them: validated, canonical, sorted. */
export interface CloudflareRanges {
  ipv4: Cidr[];
  ipv6: Cidr[];
  etag: string;
}

export interface RangeRules {
  minIpv4: number;
  minIpv6: number;
  includeJdcloud: boolean;
}

/** The answer was not something to act on; the job fails before any host is touched. */
export class RangesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RangesError';
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * https only: the list decides who may reach the server, so it must not be swappable on the
 * way. Plain http is accepted for loopback alone (a local mirror or a test server), where
 * nothing sits between the runner and the answer.
 */
export function checkSourceUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'an absolute URL';
  }
  if (url.protocol === 'https:') return undefined;
  const host = url.hostname;
  const loopback = LOOPBACK_HOSTS.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
  if (url.protocol === 'http:' && loopback) return undefined;
  return 'an https:// URL (plain http:// only for a loopback address such as 127.0.0.1)';
}

function list(result: Record<string, unknown>, key: string, required: boolean): unknown[] {
  const value = result[key];
  if (value === undefined && !required) return [];
  if (!Array.isArray(value)) throw new RangesError(`the answer's result.${key} is ${value === undefined ? 'missing' : 'not a list'}`);
  return value;
}

/** Checks an API answer (already parsed JSON) and returns the ranges, or throws RangesError saying why not. */
export function validateRanges(body: unknown, rules: RangeRules): CloudflareRanges {
  if (typeof body !== 'object' || body === null) throw new RangesError('the answer is not a JSON object');
  const answer = body as Record<string, unknown>;
  const errors = Array.isArray(answer.errors) ? answer.errors : [];
  if (answer.success !== true) {
    throw new RangesError(`the API answered success: ${JSON.stringify(answer.success)}${errors.length > 0 ? ` with errors ${JSON.stringify(errors)}` : ''}`);
  }
  if (errors.length > 0) throw new RangesError(`the API reported errors: ${JSON.stringify(errors)}`);
  if (typeof answer.result !== 'object' || answer.result === null) throw new RangesError('the answer has no result object');
  const result = answer.result as Record<string, unknown>;

  const problems: string[] = [];
  const take = (key: string, entries: unknown[], family?: 'ipv4' | 'ipv6'): Cidr[] =>
    entries.flatMap((entry) => {
      const parsed = typeof entry === 'string' ? parseCidr(entry, family) : 'not a string';
      if (typeof parsed === 'string') {
        problems.push(`result.${key} entry ${JSON.stringify(entry)}: ${parsed}`);
        return [];
      }
      return [parsed];
    });
  const ipv4 = take('ipv4_cidrs', list(result, 'ipv4_cidrs', true), 'ipv4');
  const ipv6 = take('ipv6_cidrs', list(result, 'ipv6_cidrs', true), 'ipv6');
  // jdcloud_cidrs mixes both families; each entry goes to its own set.
  const jdcloud = rules.includeJdcloud ? take('jdcloud_cidrs', list(result, 'jdcloud_cidrs', true)) : [];
  if (problems.length > 0) throw new RangesError(`the answer holds invalid ranges:\n${problems.map((p) => `- ${p}`).join('\n')}`);

  const all4 = uniqueSorted([...ipv4, ...jdcloud.filter((c) => c.family === 'ipv4')]);
  const all6 = uniqueSorted([...ipv6, ...jdcloud.filter((c) => c.family === 'ipv6')]);
  if (ipv4.length < rules.minIpv4) throw new RangesError(`the answer lists ${ipv4.length} IPv4 ranges, fewer than min-ipv4 (${rules.minIpv4})`);
  if (ipv6.length < rules.minIpv6) throw new RangesError(`the answer lists ${ipv6.length} IPv6 ranges, fewer than min-ipv6 (${rules.minIpv6})`);
  const etag = typeof result.etag === 'string' ? result.etag : '';
  return { ipv4: all4, ipv6: all6, etag };
}

/** Fetches and validates the list; every way it can go wrong ends in a RangesError saying no host was touched. */
export async function fetchRanges(url: string, rules: RangeRules, timeoutSeconds = 30): Promise<CloudflareRanges> {
  try {
    return await fetchAndValidate(url, rules, timeoutSeconds);
  } catch (error) {
    if (error instanceof RangesError) throw new RangesError(`Cloudflare's IP list was refused, so no host was touched: ${error.message}`);
    throw error;
  }
}

async function fetchAndValidate(url: string, rules: RangeRules, timeoutSeconds: number): Promise<CloudflareRanges> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutSeconds * 1000), redirect: 'error' });
  } catch (error) {
    throw new RangesError(`fetching ${url} failed: ${(error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new RangesError(`${url} answered HTTP ${response.status}: ${text.slice(0, 200)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RangesError(`${url} did not answer JSON: ${text.slice(0, 200)}`);
  }
  return validateRanges(body, rules);
}
