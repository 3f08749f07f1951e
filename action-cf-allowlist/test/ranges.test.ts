import { describe, expect, it } from 'vitest';
import { notCoveredBy, parseCidr, rangeToCidrs, type Cidr } from '../src/cidr';
import { checkSourceUrl, validateRanges } from '../src/ranges';
import { CF_IPV4, CF_IPV6, JDCLOUD, cfBody } from './fixtures';

const RULES = { minIpv4: 10, minIpv6: 4, includeJdcloud: false };
const c = (text: string) => parseCidr(text) as Cidr;

describe('parseCidr', () => {
  it.each([
    ['173.245.48.0/20', 'ipv4', '173.245.48.0/20'],
    ['2400:CB00:0::/32', 'ipv6', '2400:cb00::/32'],
    ['192.0.2.7', 'ipv4', '192.0.2.7/32'],
  ])('%s', (text, family, canonical) => {
    expect(parseCidr(text)).toMatchObject({ family, text: canonical });
  });

  it.each([
    ['173.245.48.0/33', /not a valid/],
    ['173.245.48.1/20', /host bits set \(the network is 173\.245\.48\.0\/20\)/],
    ['10.1/8', /not a valid/],
    ['garbage', /not a valid/],
    ['::ffff:1.2.3.4/128', /not a valid/],
    ['', /not a valid/],
  ])('refuses %j', (text, reason) => {
    expect(parseCidr(text)).toMatch(reason);
  });

  it('refuses the wrong family', () => {
    expect(parseCidr('2400:cb00::/32', 'ipv4')).toMatch(/IPv6 range where IPv4 was expected/);
  });
});

describe('rangeToCidrs and notCoveredBy', () => {
  it('splits a merged range back into prefixes', () => {
    const a = c('104.16.0.0/13');
    const b = c('104.24.0.0/14');
    expect(rangeToCidrs('ipv4', a.start, b.end).map((x) => x.text)).toEqual(['104.16.0.0/13', '104.24.0.0/14']);
  });
  it('compares by addresses covered, per family', () => {
    expect(notCoveredBy([c('10.0.0.0/25'), c('10.0.1.0/24'), c('2001:db8::/48')], [c('10.0.0.0/24'), c('2001:db8::/32')]).map((x) => x.text)).toEqual([
      '10.0.1.0/24',
    ]);
  });
});

describe('validateRanges', () => {
  it('accepts the real answer, sorted and canonical, with its etag', () => {
    const ranges = validateRanges(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6, etag: 'abc' }), RULES);
    expect(ranges.ipv4).toHaveLength(15);
    expect(ranges.ipv6).toHaveLength(7);
    expect(ranges.ipv4[0]!.text).toBe('103.21.244.0/22');
    expect(ranges.etag).toBe('abc');
  });

  it('adds jdcloud ranges to their families only when asked', () => {
    const ranges = validateRanges(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6 }), { ...RULES, includeJdcloud: true });
    expect(ranges.ipv4).toHaveLength(15 + 2);
    expect(ranges.ipv6).toHaveLength(7 + 1);
    expect(validateRanges(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6, jdcloud: ['garbage'] }), RULES).ipv4).toHaveLength(15);
    expect(JDCLOUD).toHaveLength(3);
  });

  it.each([
    ['success false', { ...(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6 }) as object), success: false }, /success: false/],
    ['errors present', { ...(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6 }) as object), errors: [{ code: 1 }] }, /reported errors/],
    ['no result', { success: true, errors: [] }, /no result object/],
    ['missing ipv6 list', { success: true, errors: [], result: { ipv4_cidrs: CF_IPV4 } }, /result\.ipv6_cidrs is missing/],
    ['too few ipv4', cfBody({ ipv4: CF_IPV4.slice(0, 9), ipv6: CF_IPV6 }), /9 IPv4 ranges, fewer than min-ipv4 \(10\)/],
    ['too few ipv6', cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6.slice(0, 3) }), /3 IPv6 ranges, fewer than min-ipv6 \(4\)/],
    ['a v6 range in the v4 list', cfBody({ ipv4: [...CF_IPV4, '2400:cb00::/32'], ipv6: CF_IPV6 }), /IPv6 range where IPv4 was expected/],
    ['a number', cfBody({ ipv4: [...CF_IPV4, 42 as unknown as string], ipv6: CF_IPV6 }), /entry 42: not a string/],
    ['not an object', 'nope', /not a JSON object/],
  ])('refuses %s', (_name, body, message) => {
    expect(() => validateRanges(body, RULES)).toThrow(message);
  });
});

describe('checkSourceUrl', () => {
  it.each(['https://api.cloudflare.com/client/v4/ips', 'http://127.0.0.1:8080/ips', 'http://localhost/ips', 'http://[::1]:9/x'])('accepts %s', (url) => {
    expect(checkSourceUrl(url)).toBeUndefined();
  });
  it.each(['http://api.cloudflare.com/client/v4/ips', 'http://10.0.0.1/ips', 'ftp://x/y', 'ips.json'])('refuses %s', (url) => {
    expect(checkSourceUrl(url)).toBeDefined();
  });
});
