import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoolify, startSystemdHost, tempDir, type CoolifyServer, type SystemdHost } from '@skiff/testbed';
import { runWorkflow } from './workflow-runner';

/**
 * deploy.yml, the reusable workflow for what build-deploy.yml cannot express: a systemd app whose
 * release an earlier job of the caller packaged as an artifact, and a Coolify resource. Run the
 * way a caller's workflow runs it (GitHub's parser and evaluator feed every input), against a
 * real systemd server and the Coolify API stand-in.
 */

const ZEROS = '0'.repeat(40);
const UNIT = 'skiffwf-app.service';
const PROJECT_DIR = '/srv/skiffwf/app';
const SERVER_PY = `import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
version = open('version.txt').read().strip()
compiled = os.path.isdir('__pycache__')
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('version=%s compiled=%s\\n' % (version, compiled)).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(('0.0.0.0', 8080), Handler).serve_forever()
`;

let repo: { path: string; remove(): Promise<void> };
let host: SystemdHost;
let coolify: CoolifyServer;
let appUrl: string;

beforeAll(async () => {
  [repo, host, coolify] = await Promise.all([
    tempDir('skiff-deploy-wf'),
    startSystemdHost({ name: `skiffwf${process.pid}`, publish: [8080] }),
    startCoolify([{ uuid: 'wf-app-0001', name: 'shop', kind: 'application' }]),
  ]);
  appUrl = `http://127.0.0.1:${host.ports[8080]}`;
  await host.exec(['bash', '-c', `cat > /etc/systemd/system/${UNIT}`], {
    input: `[Service]\nWorkingDirectory=${PROJECT_DIR}/current\nExecStart=/usr/bin/python3 server.py\nUser=nobody\nRestart=on-failure\n[Install]\nWantedBy=multi-user.target\n`,
  });
  await host.exec(['systemctl', 'daemon-reload']);
  await mkdir(join(repo.path, 'app'), { recursive: true });
  await mkdir(join(repo.path, '.github/workflows'), { recursive: true });
  await writeFile(join(repo.path, 'app', 'server.py'), SERVER_PY);
  await writeFile(
    join(repo.path, '.github/workflows/systemd.yml'),
    [
      'on: push',
      'jobs:',
      '  package:',
      '    runs-on: ubuntu-24.04',
      '    steps:',
      '      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2',
      '      - run: mkdir -p dist && cp app/server.py dist/ && echo "$GITHUB_SHA" > dist/version.txt',
      '      - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2',
      '        with: { name: release, path: dist, if-no-files-found: error }',
      '  deploy:',
      '    needs: package',
      `    uses: OWNER/skiff/.github/workflows/deploy.yml@${ZEROS}`,
      '    permissions: { contents: read, deployments: write, packages: read }',
      '    with:',
      '      environment: production',
      '      strategy: systemd',
      '      host: ${{ vars.HOST }}',
      '      port: ${{ fromJSON(vars.PORT) }}',
      '      username: root',
      '      fingerprint: ${{ vars.FINGERPRINT }}',
      `      project-dir: ${PROJECT_DIR}`,
      '      systemd-unit: skiffwf-app',
      '      artifact-name: release',
      '      artifact-path: dist',
      '      install-command: python3 -m compileall -q .',
      '      health-url: ${{ vars.APP_URL }}/',
      '      health-interval: 1s',
      '    secrets:',
      '      SSH_KEY: ${{ secrets.SSH_KEY }}',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(repo.path, '.github/workflows/coolify.yml'),
    [
      'on: push',
      'jobs:',
      '  deploy:',
      `    uses: OWNER/skiff/.github/workflows/deploy.yml@${ZEROS}`,
      '    permissions: { contents: read, deployments: write, packages: read }',
      '    with:',
      '      environment: production',
      '      strategy: coolify',
      '      coolify-url: ${{ vars.COOLIFY_URL }}',
      '      coolify-uuid: wf-app-0001',
      '      coolify-poll-interval: 1s',
      '    secrets:',
      '      COOLIFY_TOKEN: ${{ secrets.COOLIFY_TOKEN }}',
      '',
    ].join('\n'),
  );
}, 300_000);

afterAll(async () => {
  await Promise.all([host?.stop(), coolify?.stop(), repo?.remove()]);
});

describe('deploy.yml, the reusable workflow for every strategy', () => {
  it('strategy systemd: the release an earlier job packaged is downloaded, installed, switched and gated', async () => {
    const run = await runWorkflow({
      repository: repo.path,
      workflow: '.github/workflows/systemd.yml',
      event: { name: 'push' },
      vars: { HOST: host.host, PORT: String(host.port), FINGERPRINT: host.hostFingerprint, APP_URL: appUrl },
      secrets: { SSH_KEY: host.privateKey },
    });
    try {
      const deploy = run.action('action-deploy');
      expect(run.result, run.log).toBe('success');
      expect(deploy.outputs.status).toBe('deployed');
      // Registry inputs stay unset: strategy systemd refuses them.
      expect([deploy.inputs!.registry, deploy.inputs!['registry-username'], deploy.inputs!['registry-password']]).toEqual(['', '', '']);
      expect(deploy.inputs!.port).toBe(String(host.port));
      const body = (await (await fetch(`${appUrl}/`)).text()).trim();
      expect(body).toBe('version=a1b2c3d4e5f60718293a4b5c6d7e8f9012345678 compiled=True');
      expect(run.jobs.find((job) => job.id === 'deploy')!.outputs.status).toBe('deployed');
    } finally {
      await run.remove();
    }
  });

  it('strategy coolify: the resource is deployed through the API with the token from the secret; no SSH input is passed', async () => {
    const run = await runWorkflow({
      repository: repo.path,
      workflow: '.github/workflows/coolify.yml',
      event: { name: 'push' },
      vars: { COOLIFY_URL: coolify.url },
      secrets: { COOLIFY_TOKEN: coolify.token },
    });
    try {
      const deploy = run.action('action-deploy');
      expect(run.result, run.log).toBe('success');
      expect(deploy.outputs.status).toBe('deployed');
      expect(coolify.deployments.map((d) => d.resource.uuid)).toEqual(['wf-app-0001']);
      expect(deploy.log).not.toContain(coolify.token);
    } finally {
      await run.remove();
    }
  });
});
