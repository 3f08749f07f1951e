import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { forHost } from '../src/each-host';
import { readDeployInputs } from '../src/inputs';
import { useInputsWorkspace } from './inputs-workspace';

useInputsWorkspace({ repository: 'acme/shop', files: { 'compose.yaml': 'services: {}\n' } });

const ssh = {
  host: 'a.example.com, b.example.com',
  username: 'deploy',
  password: 'pw-123456',
  fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
};

describe('backup-before-deploy inputs', () => {
  it("takes one mapping in action-backup's source form; backups go under project-dir by default", () => {
    setInputs({ ...ssh, 'project-dir': '/srv/{host}/shop', 'backup-before-deploy': 'type: postgres\nservice: db\ndatabase: app\nuser: app\n' });
    const inputs = readDeployInputs();
    expect(inputs.backupBeforeDeploy).toMatchObject({ path: '/srv/{host}/shop/backups', keep: 10 });
    expect(inputs.backupBeforeDeploy!.sources).toEqual([
      expect.objectContaining({ name: 'postgres-app', type: 'postgres', database: 'app', user: 'app', place: { kind: 'compose', service: 'db' } }),
    ]);
    // Each host keeps its own backups, like its own releases.
    expect(forHost(inputs, 'b.example.com').backupBeforeDeploy!.path).toBe('/srv/b.example.com/shop/backups');
  });

  it('takes a list too, with a path and how many to keep', () => {
    setInputs({
      ...ssh,
      'backup-before-deploy': '- type: postgres\n  container: pg\n  database: app\n- type: redis\n  service: cache\n',
      'backup-path': '/var/backups/shop/',
      'backup-keep': '3',
    });
    const inputs = readDeployInputs();
    expect(inputs.backupBeforeDeploy!.sources.map((source) => source.name)).toEqual(['postgres-app', 'redis-cache']);
    expect(inputs.backupBeforeDeploy).toMatchObject({ path: '/var/backups/shop', keep: 3 });
  });

  it('reports a bad source, a bad path and a strategy it cannot run with, naming each input', () => {
    setInputs({ ...ssh, strategy: 'swarm', 'backup-before-deploy': 'type: oracle\n', 'backup-path': 'relative/dir', 'backup-keep': '0' });
    let message = '';
    try {
      readDeployInputs();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/Input "backup-before-deploy" has a problem \(the same form as action-backup's sources\)/);
    expect(message).toMatch(/oracle/);
    expect(message).toMatch(/backup-keep/);
  });

  it('refuses the fields only a database reached from the runner uses (action-backup without host): the backup runs on the server', () => {
    setInputs({ ...ssh, 'backup-before-deploy': 'url: postgresql://app@10.0.0.5/app\nclient-image: postgres:{major}\n' });
    expect(() => readDeployInputs()).toThrow(/Input "backup-before-deploy": postgres-app's "client-image" is only for databases reached from the runner/);
  });

  it('refuses backup-path without backup-before-deploy, and backup-before-deploy with strategy systemd', () => {
    setInputs({ ...ssh, 'backup-path': '/var/backups/x' });
    expect(() => readDeployInputs()).toThrow(/"backup-path" is set but "backup-before-deploy" is not/);
    setInputs({ ...ssh, strategy: 'systemd', 'backup-before-deploy': 'type: postgres\ndatabase: app\n', 'backup-path': '/x/../y' });
    let message = '';
    try {
      readDeployInputs();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/backup-path/);
    expect(message).toMatch(/works with strategy recreate or rolling .*strategy is systemd/);
  });
});
