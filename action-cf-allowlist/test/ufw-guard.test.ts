import { describe, expect, it } from 'vitest';
import { render, script } from '@skiff/shell';
import { parseCidr, type Cidr } from '../src/cidr';
import { armCommands, cancelCommands, guardPaths, revertScript } from '../src/guard';
import { saveLastGoodCommand } from '../src/nftables';
import { parseUfwAdded, ufwChangeCommands, ufwDiff, wantedUfwRules } from '../src/ufw';

const c = (text: string) => parseCidr(text) as Cidr;

describe('ufw rules', () => {
  const SHOW_ADDED = [
    "Added user rules (see 'ufw status' for running firewall):",
    "ufw allow from 10.1.0.0/16 to any port 80,443 proto tcp comment 'skiff_cf'",
    'ufw allow 22/tcp',
    "ufw deny 80,443/tcp comment 'skiff_cf'",
    "ufw allow from 2400:cb00::/32 to any port 80,443 proto tcp comment 'skiff_cf'",
    "ufw allow from 192.0.2.9 to any port 80 proto tcp comment 'someone-else'",
  ].join('\n');

  it('reads only the rules tagged with our comment', () => {
    expect(parseUfwAdded(SHOW_ADDED, 'skiff_cf').map((r) => `${r.action} ${r.from?.text ?? 'any'} ${r.ports}`)).toEqual([
      'allow 10.1.0.0/16 80,443',
      'deny any 80,443',
      'allow 2400:cb00::/32 80,443',
    ]);
  });

  it('changes only the difference: allows prepended, denies appended, removals last', () => {
    const wanted = wantedUfwRules({ table: 'skiff_cf', ports: [80, 443], cf4: [c('10.2.0.0/16')], cf6: [c('2400:cb00::/32')], extra: [], dockerPublished: true });
    const diff = ufwDiff(parseUfwAdded(SHOW_ADDED, 'skiff_cf'), wanted);
    expect(ufwChangeCommands(diff, 'skiff_cf').map(render)).toEqual([
      'ufw prepend allow proto tcp from 10.2.0.0/16 to any port 80,443 comment skiff_cf >/dev/null',
      'ufw delete allow proto tcp from 10.1.0.0/16 to any port 80,443 >/dev/null',
    ]);
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
          'systemd-run --quiet --collect \'--unit=skiff-cf-revert-skiff_cf\' \'--on-active=60s\' \'--timer-property=AccuracySec=1s\' /bin/sh /var/lib/skiff-cf/skiff_cf/revert.sh ; else ' +
          "setsid nohup sh -c 'sleep 60; exec sh /var/lib/skiff-cf/skiff_cf/revert.sh' </dev/null >/dev/null 2>&1 & echo $! > /var/lib/skiff-cf/skiff_cf/sleeper.pid ; fi",
      ].join('\n'),
    );
  });

  it('revert and confirm race on one atomic rename', () => {
    expect(revertScript(paths, [['nft', '-f', `${paths.dir}/last-good.nft`]])).toContain(
      'mv /var/lib/skiff-cf/skiff_cf/armed /var/lib/skiff-cf/skiff_cf/fired 2>/dev/null || exit 0\nnft -f /var/lib/skiff-cf/skiff_cf/last-good.nft\n',
    );
    expect(render(cancelCommands('skiff_cf', paths)[0]!)).toBe(
      'if ! mv /var/lib/skiff-cf/skiff_cf/armed /var/lib/skiff-cf/skiff_cf/confirmed 2>/dev/null; then echo "the lockout guard already restored the previous rules" >&2; exit 3; fi',
    );
  });

  it('saves the live table (or its absence) as a file nft can restore', () => {
    expect(render(saveLastGoodCommand('skiff_cf', '/x/last-good.nft'))).toBe(
      "{ printf %s 'table inet skiff_cf {}\ndelete table inet skiff_cf\n' ; nft list table inet skiff_cf 2>/dev/null || true; } > /x/last-good.nft",
    );
  });
});
