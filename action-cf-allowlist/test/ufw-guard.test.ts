import { describe, expect, it } from 'vitest';
import { render, script } from '@skiff/shell';
import { parseCidr, type Cidr } from '../src/cidr';
import { armCommands, cancelCommands, guardPaths, revertScript } from '../src/guard';
import { saveLastGoodCommand } from '../src/nftables';
import { allowCommand, conflictingRules, deleteCommand, denyCommand, parseUfwNumbered, ufwDiff, wantedUfwRules } from '../src/ufw';

const c = (text: string) => parseCidr(text) as Cidr;

describe('ufw rules', () => {
  // `ufw status numbered` of a host where the admin allows SSH and the web to everyone.
  const STATUS = [
    'Status: active',
    '',
    '     To                         Action      From',
    '     --                         ------      ----',
    '[ 1] 80,443/tcp                 ALLOW IN    10.1.0.0/16                # skiff_cf',
    '[ 2] 80,443/tcp                 DENY IN     Anywhere                   # skiff_cf',
    '[ 3] 22/tcp                     ALLOW IN    Anywhere',
    '[ 4] 80/tcp                     ALLOW IN    Anywhere',
    '[ 5] 80,443/tcp                 ALLOW IN    192.0.2.9                  # someone-else',
    '[ 6] 80,443/tcp                 ALLOW IN    2400:cb00::/32             # skiff_cf',
    '[ 7] 22/tcp (v6)                ALLOW IN    Anywhere (v6)',
    '',
  ].join('\n');
  const list = { table: 'skiff_cf', ports: [80, 443], cf4: [c('10.2.0.0/16')], cf6: [c('2400:cb00::/32')], extra: [], dockerPublished: true };
  const show = (rules: Array<{ action: string; family: string; from?: Cidr; ports: string }>) =>
    rules.map((r) => `${r.action} ${r.family} ${r.from?.text ?? 'any'} ${r.ports}`);

  it('reads every numbered rule, ours recognised by the comment, with its family', () => {
    const rules = parseUfwNumbered(STATUS, 'skiff_cf');
    expect(rules.map((r) => r.number)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(show(rules.filter((r) => r.tagged))).toEqual(['allow ipv4 10.1.0.0/16 80,443', 'deny ipv4 any 80,443', 'allow ipv6 2400:cb00::/32 80,443']);
    expect(rules[6]).toMatchObject({ family: 'ipv6', tagged: false });
  });

  it('changes only the difference, never the admin’s rules', () => {
    const diff = ufwDiff(parseUfwNumbered(STATUS, 'skiff_cf'), wantedUfwRules(list));
    expect(show(diff.add)).toEqual(['allow ipv4 10.2.0.0/16 80,443', 'deny ipv6 any 80,443']);
    expect(show(diff.remove)).toEqual(['allow ipv4 10.1.0.0/16 80,443']);
    expect(render(allowCommand(diff.add[0]!, 'skiff_cf'))).toBe('ufw prepend allow proto tcp from 10.2.0.0/16 to any port 80,443 comment skiff_cf');
    expect(render(deleteCommand(diff.remove[0]!))).toBe('ufw delete allow proto tcp from 10.1.0.0/16 to any port 80,443');
  });

  it('places a deny right below our allows of its family, above the admin’s allow-all', () => {
    const live = parseUfwNumbered(STATUS, 'skiff_cf');
    expect(render(denyCommand({ action: 'deny', family: 'ipv6', ports: '80,443' }, live, 'skiff_cf'))).toBe(
      'ufw insert 7 deny proto tcp from ::/0 to any port 80,443 comment skiff_cf',
    );
    // No allow of ours for port 22 yet: the top of the family.
    expect(render(denyCommand({ action: 'deny', family: 'ipv4', ports: '22' }, live, 'skiff_cf'))).toBe(
      'ufw insert 1 deny proto tcp from 0.0.0.0/0 to any port 22 comment skiff_cf',
    );
    // Past the family's last rule ufw refuses the number: append.
    const onlyOurs = live.filter((r) => r.number === 6);
    expect(render(denyCommand({ action: 'deny', family: 'ipv6', ports: '80,443' }, onlyOurs, 'skiff_cf'))).toBe(
      'ufw deny proto tcp from ::/0 to any port 80,443 comment skiff_cf',
    );
  });

  it('names an admin allow-from-anywhere that ufw would merge with our deny', () => {
    const live = parseUfwNumbered(STATUS, 'skiff_cf');
    expect(conflictingRules(live, wantedUfwRules({ ...list, sshAllow: [c('198.51.100.0/24')] }))).toEqual([
      'rule 3 (allow 22/tcp from anywhere)',
      'rule 7 (allow 22/tcp from anywhere, IPv6)',
    ]);
    expect(conflictingRules(live, wantedUfwRules(list))).toEqual([]);
  });

  it('moves a deny that sits above one of our allows', () => {
    const misordered = STATUS.replace(
      '[ 1] 80,443/tcp                 ALLOW IN    10.1.0.0/16',
      '[ 1] 80,443/tcp                 ALLOW IN    10.9.0.0/16',
    ).replace(
      '[ 2] 80,443/tcp                 DENY IN     Anywhere                   # skiff_cf',
      '[ 2] 80,443/tcp                 DENY IN     Anywhere                   # skiff_cf\n[ 2] 80,443/tcp                 ALLOW IN    10.2.0.0/16                # skiff_cf',
    );
    const live = parseUfwNumbered(misordered.replace('[ 2] 80,443/tcp                 ALLOW', '[ 3] 80,443/tcp                 ALLOW'), 'skiff_cf');
    const diff = ufwDiff(live, wantedUfwRules(list));
    expect(show(diff.remove)).toEqual(['allow ipv4 10.9.0.0/16 80,443', 'deny ipv4 any 80,443']);
    expect(show(diff.add)).toEqual(['deny ipv4 any 80,443', 'deny ipv6 any 80,443']);
  });
});

describe('lockout guard commands', () => {
  const paths = guardPaths('skiff_cf');

  it('arms a systemd timer or a detached sleeper', () => {
    expect(script(armCommands('skiff_cf', paths, 60))).toBe(
      [
        'set -euo pipefail',
        'rm -f /var/lib/skiff-cf/skiff_cf/fired /var/lib/skiff-cf/skiff_cf/confirmed',
        'date -u +%FT%TZ > /var/lib/skiff-cf/skiff_cf/armed',
        'if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then systemctl stop skiff-cf-revert-skiff_cf.timer skiff-cf-revert-skiff_cf.service 2>/dev/null || true; ' +
          "systemd-run --quiet --collect '--unit=skiff-cf-revert-skiff_cf' '--on-active=60s' '--timer-property=AccuracySec=1s' /bin/sh /var/lib/skiff-cf/skiff_cf/revert.sh ; else " +
          "setsid nohup sh -c 'sleep 60; exec sh /var/lib/skiff-cf/skiff_cf/revert.sh' </dev/null >/dev/null 2>&1 & echo $! > /var/lib/skiff-cf/skiff_cf/sleeper.pid ; fi",
      ].join('\n'),
    );
  });

  it('revert and confirm race on one atomic rename', () => {
    expect(revertScript(paths, [['nft', '-f', `${paths.dir}/last-good.nft`]])).toContain(
      'mv /var/lib/skiff-cf/skiff_cf/armed /var/lib/skiff-cf/skiff_cf/fired 2>/dev/null || exit 0\nnft -f /var/lib/skiff-cf/skiff_cf/last-good.nft\n',
    );
    expect(render(cancelCommands('skiff_cf', paths)[0]!)).toBe(
      "if ! mv /var/lib/skiff-cf/skiff_cf/armed /var/lib/skiff-cf/skiff_cf/confirmed 2>/dev/null; then echo 'the lockout guard already restored the previous rules' >&2; exit 3; fi",
    );
  });

  it('saves the live table (or its absence) as a file nft can restore', () => {
    expect(render(saveLastGoodCommand('skiff_cf', '/x/last-good.nft'))).toBe(
      "{ printf %s 'table inet skiff_cf {}\ndelete table inet skiff_cf\n' ; nft list table inet skiff_cf 2>/dev/null || true; } > /x/last-good.nft",
    );
  });
});
