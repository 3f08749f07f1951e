import { describe, expect, it, vi } from 'vitest';
import { uploadRelease, type Deployer } from '../src/deploy';

describe('uploadRelease', () => {
  it('when one upload fails, gives its error only after the others have ended: nothing is still writing while the story puts things back', async () => {
    let metaDone = false;
    const server = {
      run: vi.fn(async () => ({ code: 0, stdout: '', stderr: '' })),
      upload: vi.fn(async (_path: string, _content: string, options: { description?: string }) => {
        if (options.description === 'upload the env file') throw new Error('Upload failed (write): Failure');
        if (options.description === 'upload meta.json') {
          await new Promise((resolve) => setTimeout(resolve, 200));
          metaDone = true;
        }
      }),
    };
    const d = {
      server,
      cli: { compose: 'v2', sudo: false },
      inputs: {
        projectDir: '/opt/shop',
        projectName: 'shop',
        composeFiles: [{ name: 'compose.yaml', path: 'compose.yaml', content: 'services: {}\n' }],
        envFile: 'A=1\n',
        images: {},
        serverBuilds: [],
      },
      ctx: { sha: 'abc', ref: 'refs/heads/main', actor: 'a', runUrl: '', token: 't' },
    } as unknown as Deployer;
    await expect(uploadRelease(d, '20260101T000000Z-abc-0001', { linkEnv: true })).rejects.toThrow('Upload failed (write): Failure');
    expect(metaDone).toBe(true);
  });
});
