import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { readDeployInputs } from '../src/inputs';
import { pruneStore, resolveShippedFiles, storeShippedFiles, type ShippedFile } from '../src/shipped-files';
import { script } from '@skiff/shell';
import { useInputsWorkspace } from './inputs-workspace';

const workspace = useInputsWorkspace({ repository: 'acme/shop', files: { 'README.md': 'x\n' } });
const ssh = { host: 'example.com', username: 'deploy', password: 'pw-123456', fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };

async function repo(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(workspace.path, path, '..'), { recursive: true });
    await writeFile(join(workspace.path, path), content, { mode: path.endsWith('.sh') ? 0o755 : 0o644 });
  }
}

const file = (path: string, content: string): ShippedFile => ({ path, mode: 0o644, content: Buffer.from(content) });

describe('the files input', () => {
  it('expands paths, folders and globs relative to the repository, placed relative to the first compose file', async () => {
    await repo({
      'deploy/compose.yaml': 'services: {}\n',
      'deploy/Caddyfile': 'c\n',
      'deploy/conf/a.conf': 'a\n',
      'deploy/conf/sub/b.conf': 'b\n',
      'deploy/conf/sub/skip.txt': 's\n',
      'deploy/init.sh': 'i\n',
    });
    setInputs({ ...ssh, 'compose-file': 'deploy/compose.yaml', files: 'deploy/Caddyfile\ndeploy/conf/**/*.conf\n./deploy/init.sh' });
    const inputs = readDeployInputs();
    expect(inputs.shippedFiles!.map((f) => [f.path, f.mode.toString(8), f.content.toString()])).toEqual([
      ['Caddyfile', '644', 'c\n'],
      ['conf/a.conf', '644', 'a\n'],
      ['conf/sub/b.conf', '644', 'b\n'],
      ['init.sh', '755', 'i\n'],
    ]);
  });

  it('names every line that is wrong: missing, matching nothing, outside the compose file folder, absolute', async () => {
    await repo({ 'deploy/compose.yaml': 'services: {}\n', 'shared/x.conf': 'x\n' });
    setInputs({ ...ssh, 'compose-file': 'deploy/compose.yaml', files: 'deploy/missing.conf\ndeploy/*.nothing\nshared/x.conf\n/etc/passwd' });
    expect(() => readDeployInputs()).toThrow(
      /Input "files" must name configuration files in the repository .*"deploy\/missing\.conf" does not exist; "deploy\/\*\.nothing" matches no file; "\/etc\/passwd" is not a path inside the repository; shared\/x\.conf is outside deploy\/, the first compose file's folder/,
    );
  });

  it('is refused with strategies that do not run the compose project, and with rollback', async () => {
    await repo({ 'compose.yaml': 'services: {}\n', Caddyfile: 'c\n' });
    setInputs({ ...ssh, strategy: 'swarm', 'swarm-stack': 'shop', files: 'Caddyfile' });
    expect(() => readDeployInputs()).toThrow(/Input "files" works with strategy recreate or rolling .*strategy is swarm/);
    setInputs({ ...ssh, rollback: 'previous', files: 'Caddyfile' });
    expect(() => readDeployInputs()).toThrow(/Inputs "rollback" and "files" are both set/);
  });
});

describe('resolveShippedFiles', () => {
  const files = [file('Caddyfile', 'one'), file('conf/a.conf', 'a'), file('conf/b.conf', 'b')];

  it('points long-form bind mounts, v1 short-form mounts and config files at store entries named by content', () => {
    const config = JSON.stringify({
      services: {
        proxy: {
          volumes: [
            { type: 'bind', source: '/srv/app/Caddyfile', target: '/etc/caddy/Caddyfile', read_only: true },
            { type: 'bind', source: '/srv/app/data', target: '/data' },
          ],
        },
        legacy: { volumes: ['/srv/app/conf:/etc/conf:ro'], configs: [{ source: 'main' }] },
      },
      configs: { main: { file: '/srv/app/conf/a.conf' } },
    });
    const { mounts, override, services } = resolveShippedFiles(config, '/srv/app', files);
    expect(mounts.map((m) => m.source).sort()).toEqual(['Caddyfile', 'conf', 'conf/a.conf']);
    const parsed = JSON.parse(override);
    const caddy = mounts.find((m) => m.source === 'Caddyfile')!;
    expect(parsed.services.proxy.volumes).toEqual([
      { type: 'bind', source: `/srv/app/.skiff/files/${caddy.hash}/Caddyfile`, target: '/etc/caddy/Caddyfile', read_only: true },
    ]);
    expect(parsed.services.legacy.volumes[0]).toMatch(/^\/srv\/app\/\.skiff\/files\/[0-9a-f]{24}\/conf:\/etc\/conf:ro$/);
    expect(parsed.configs.main.file).toMatch(/\/\.skiff\/files\/[0-9a-f]{24}\/a\.conf$/);
    expect(parsed.services.legacy.labels['dev.skiff.files'].split(',')).toHaveLength(2);
    expect(services).toEqual(['legacy', 'proxy']);
  });

  it('names the store entry by content: the same files give the same name, one changed byte a new one', () => {
    const config = JSON.stringify({ services: { proxy: { volumes: [{ type: 'bind', source: '/srv/app/conf', target: '/c' }] } } });
    const hashOf = (list: ShippedFile[]) => resolveShippedFiles(config, '/srv/app', list).mounts[0]!.hash;
    const base = hashOf([file('conf/a.conf', 'a'), file('conf/b.conf', 'b')]);
    expect(hashOf([file('conf/a.conf', 'a'), file('conf/b.conf', 'b')])).toBe(base);
    expect(hashOf([file('conf/a.conf', 'a'), file('conf/b.conf', 'c')])).not.toBe(base);
    expect(hashOf([file('conf/a.conf', 'a'), { ...file('conf/b.conf', 'b'), mode: 0o755 }])).not.toBe(base);
  });

  it('a shipped file nothing reads is an error naming where Compose would look', () => {
    const config = JSON.stringify({ services: { proxy: { volumes: [{ type: 'bind', source: '/srv/app/Caddyfile', target: '/etc/caddy/Caddyfile' }] } } });
    expect(() => resolveShippedFiles(config, '/srv/app', files)).toThrow(
      'Input "files": conf/a.conf (Compose would find it at /srv/app/conf/a.conf), conf/b.conf (Compose would find it at /srv/app/conf/b.conf) are not read by any bind mount, config or secret of the compose file; ship only files a service mounts',
    );
  });

  it('store and prune scripts quote every path', () => {
    const text = script([
      ...storeShippedFiles("/srv/my app's", "/srv/my app's/releases/r1", [{ source: 'conf', hash: 'abc' }]),
      ...pruneStore("/srv/my app's", "/srv/my app's/releases"),
    ]);
    expect(text).toContain(`'/srv/my app'\\''s/.skiff/files/abc'`);
    expect(text).toContain(`store='/srv/my app'\\''s/.skiff/files' releases='/srv/my app'\\''s/releases'`);
  });
});
