import { describe, expect, it } from 'vitest';
import { forHost, healthUrlsFor, type HostReport } from '../src/each-host';
import type { DeployInputs } from '../src/inputs';
import { combine, hostsOutput, renderRunSummary } from '../src/run-report';
import type { Outcome } from '../src/host-outcome';

const outcome = (status: Outcome['status'], extra: Partial<Outcome> = {}): Outcome => ({
  status,
  releaseId: '20261121T222430Z-1a2b3c4-9f0e',
  previousReleaseId: '20261120T101010Z-0f0f0f0-aaaa',
  images: { web: 'r/app@sha256:ab' },
  gates: [],
  pruned: [],
  durationSeconds: 3.2,
  mode: 'deploy',
  ...extra,
});

const report = (label: string, status: HostReport['status'], extra: Partial<HostReport> = {}): HostReport => ({
  label,
  projectDir: `/opt/shop`,
  status,
  durationSeconds: 3.25,
  ...(status === 'skipped' ? {} : { outcome: outcome(status === 'failed' ? 'failed' : status) }),
  ...extra,
});

describe('{host} placeholders', () => {
  it('fills project-dir, project-name (as a Compose name) and health-url per host', () => {
    const inputs = {
      projectDir: '/srv/{host}/app',
      projectName: 'shop-{host}',
      health: { urls: ['http://{host}:8080/health', 'http://127.0.0.1/'] },
    } as unknown as DeployInputs;
    const v4 = forHost(inputs, '10.0.0.5');
    expect([v4.projectDir, v4.projectName, v4.health.urls]).toEqual([
      '/srv/10.0.0.5/app',
      'shop-10-0-0-5',
      ['http://10.0.0.5:8080/health', 'http://127.0.0.1/'],
    ]);
    const v6 = forHost(inputs, '2001:db8::1');
    expect([v6.projectName, v6.health.urls[0]]).toEqual(['shop-2001-db8--1', 'http://[2001:db8::1]:8080/health']);
    expect(healthUrlsFor(['http://web/'], 'h')).toEqual(['http://web/']);
  });
});

describe('combine', () => {
  it('deployed only when every host deployed', () => {
    const result = combine([report('a', 'deployed'), report('b', 'deployed')], 7, 'deploy', 'x');
    expect([result.status, result.rolledBack, result.error]).toEqual(['deployed', false, undefined]);
  });

  it('rolled-back when every host runs its previous release again (rolled back or never touched)', () => {
    const undone = report('a', 'rolled-back', { undo: { to: '20261120T101010Z-0f0f0f0-aaaa', ok: true, seconds: 2 } });
    const result = combine([undone, report('b', 'rolled-back', { error: 'b failed the gate' }), report('c', 'skipped')], 9, 'deploy', 'x');
    expect(result.status).toBe('rolled-back');
    expect(result.rolledBack).toBe(true);
    expect(result.error).toBe(
      'a: switched, then rolled back to 20261120T101010Z-0f0f0f0-aaaa (all-or-nothing)\nb: b failed the gate\nc: not started (an earlier host failed)',
    );
  });

  it('failed when hosts end on different releases or one failed', () => {
    expect(combine([report('a', 'deployed'), report('b', 'rolled-back')], 1, 'deploy', 'x').status).toBe('failed');
    expect(combine([report('a', 'failed', { error: 'connect refused' })], 1, 'deploy', 'x')).toMatchObject({ status: 'failed', error: 'connect refused' });
  });

  it('hosts output and summary have one entry and one row per host', () => {
    const result = combine([report('deploy@a:22', 'deployed'), report('deploy@b:22', 'skipped')], 4, 'deploy', 'x');
    expect(hostsOutput(result)).toEqual({
      'deploy@a:22': {
        status: 'deployed',
        release: '20261121T222430Z-1a2b3c4-9f0e',
        'previous-release': '20261120T101010Z-0f0f0f0-aaaa',
        'rolled-back': false,
        'duration-seconds': 3.3,
      },
      'deploy@b:22': {
        status: 'skipped',
        release: null,
        'previous-release': null,
        'rolled-back': false,
        'duration-seconds': 3.3,
        error: 'not started (an earlier host failed)',
      },
    });
    const summary = renderRunSummary(result, '/opt/shop');
    expect(summary).toContain('### ❌ Skiff deploy to 2 hosts: failed');
    expect(summary).toContain('| `deploy@a:22` | ✅ deployed | `20261121T222430Z-1a2b3c4-9f0e` |');
    expect(summary).toContain('| `deploy@b:22` | ⏭️ skipped | — | — |');
    expect(summary).toContain('<summary>deploy@a:22: deployed</summary>');
  });
});
