import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeMetadata, sanitizeTag, type EventInfo } from '../src/metadata';

const payload = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/events', `${name}.json`), 'utf8')) as Record<string, any>;
const NOW = '2024-09-12T09:00:00.000Z';
// For pull_request events GITHUB_SHA is the merge commit GitHub made, not the PR head.
const MERGE_SHA = 'e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6e7e8e9e0';

function event(eventName: string, ref: string, sha: string, fixture: string): EventInfo {
  return { eventName, ref, sha, payload: payload(fixture), repository: 'Acme-Corp/Shop-App', serverUrl: 'https://github.com' };
}

describe('computeMetadata', () => {
  it('tags a push to the default branch with the branch, latest and sha-', () => {
    const meta = computeMetadata(event('push', 'refs/heads/main', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'push-main'), { now: NOW });
    expect(meta.tags).toEqual(['main', 'latest', 'sha-8f3c2a1']);
    expect(meta.version).toBe('main');
    expect(meta.fromFork).toBe(false);
    expect(meta.labels).toEqual({
      'org.opencontainers.image.source': 'https://github.com/Acme-Corp/Shop-App',
      'org.opencontainers.image.revision': '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a',
      // The commit's own time (10:15:30+02:00), not the build's, so one commit builds one digest.
      'org.opencontainers.image.created': '2024-09-12T08:15:30.000Z',
      'org.opencontainers.image.title': 'Shop-App',
      'org.opencontainers.image.description': 'The shop front, shipped with Skiff',
      'org.opencontainers.image.version': 'main',
      'org.opencontainers.image.licenses': 'MIT',
    });
  });

  it('sanitises a feature branch name and gives no latest', () => {
    const meta = computeMetadata(event('push', 'refs/heads/feature/Login_Page#2', 'c0ffee1234567890abcdef1234567890abcdef12', 'push-branch'), { now: NOW });
    expect(meta.tags).toEqual(['feature-Login_Page-2', 'sha-c0ffee1']);
    expect(meta.version).toBe('feature-Login_Page-2');
  });

  it('gives a v1.2.3 tag push 1.2.3, 1.2, 1 and latest', () => {
    const meta = computeMetadata(event('push', 'refs/tags/v1.2.3', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'push-tag'), { now: NOW });
    expect(meta.tags).toEqual(['1.2.3', '1.2', '1', 'latest', 'sha-8f3c2a1']);
    expect(meta.version).toBe('1.2.3');
    expect(meta.labels['org.opencontainers.image.version']).toBe('1.2.3');
  });

  it('gives a pre-release only its own tag: no 2.0, 2 or latest', () => {
    const meta = computeMetadata(event('push', 'refs/tags/v2.0.0-rc.1', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'push-tag'), { now: NOW });
    expect(meta.tags).toEqual(['2.0.0-rc.1', 'sha-8f3c2a1']);
    expect(meta.version).toBe('2.0.0-rc.1');
  });

  it('leaves out the bare major for 0.x releases, and sanitises non-semver tags', () => {
    expect(computeMetadata(event('push', 'refs/tags/v0.4.1', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'push-tag')).tags).toEqual([
      '0.4.1',
      '0.4',
      'latest',
      'sha-8f3c2a1',
    ]);
    expect(computeMetadata(event('push', 'refs/tags/release/2024 autumn', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'push-tag')).tags).toEqual([
      'release-2024-autumn',
      'sha-8f3c2a1',
    ]);
  });

  it('tags a pull request pr-<n> and uses the PR head SHA, not the merge commit', () => {
    const meta = computeMetadata(event('pull_request', 'refs/pull/42/merge', MERGE_SHA, 'pull_request'), { now: NOW });
    expect(meta.tags).toEqual(['pr-42', 'sha-d4e5f6a']);
    expect(meta.version).toBe('pr-42');
    expect(meta.revision).toBe('d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3');
    expect(meta.labels['org.opencontainers.image.revision']).toBe('d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3');
    // No head_commit in a pull_request payload: the build time stands in.
    expect(meta.labels['org.opencontainers.image.created']).toBe(NOW);
    expect(meta.fromFork).toBe(false);
  });

  it('recognises a pull request from a fork', () => {
    const meta = computeMetadata(event('pull_request', 'refs/pull/43/merge', MERGE_SHA, 'pull_request-fork'), { now: NOW });
    expect(meta.fromFork).toBe(true);
    expect(meta.tags).toEqual(['pr-43', 'sha-f00dfee']);
  });

  it('treats a schedule run (no repository in the payload) as a default-branch build', () => {
    const meta = computeMetadata(event('schedule', 'refs/heads/main', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'schedule'), { now: NOW });
    expect(meta.tags).toEqual(['main', 'latest', 'sha-8f3c2a1']);
    expect(meta.labels['org.opencontainers.image.source']).toBe('https://github.com/Acme-Corp/Shop-App');
    expect(meta.labels['org.opencontainers.image.title']).toBe('Shop-App');
    expect(meta.labels['org.opencontainers.image.created']).toBe(NOW);
    expect(meta.labels).not.toHaveProperty('org.opencontainers.image.licenses');
  });

  it('adds extra tags and labels after the computed ones, without duplicates', () => {
    const meta = computeMetadata(event('push', 'refs/heads/main', '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a', 'push-main'), {
      extraTags: ['stable', 'latest'],
      extraLabels: { 'org.opencontainers.image.description': 'Overridden', team: 'shop' },
    });
    expect(meta.tags).toEqual(['main', 'latest', 'sha-8f3c2a1', 'stable']);
    expect(meta.labels['org.opencontainers.image.description']).toBe('Overridden');
    expect(meta.labels.team).toBe('shop');
  });
});

describe('sanitizeTag', () => {
  it('replaces runs of characters a tag may not hold and strips a leading dot or dash', () => {
    expect(sanitizeTag('feature/x')).toBe('feature-x');
    expect(sanitizeTag('dependabot/npm_and_yarn/@types/node-20')).toBe('dependabot-npm_and_yarn-types-node-20');
    expect(sanitizeTag('.hidden')).toBe('hidden');
    expect(sanitizeTag('x'.repeat(200))).toHaveLength(128);
    expect(sanitizeTag('///')).toBe('');
  });
});
