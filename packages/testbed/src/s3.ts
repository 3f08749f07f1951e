// @ts-expect-error s3rver ships no type declarations
import S3rverModule from 's3rver';

interface S3rverInstance {
  run(): Promise<unknown>;
  close(): Promise<void>;
}
const S3rver = S3rverModule as new (options: Record<string, unknown>) => S3rverInstance;
import { freePort } from './sshd';
import { tempDir } from './proc';

export interface S3Server {
  endpoint: string;
  bucket: string;
  region: 'us-east-1';
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  /** Where s3rver keeps objects on disk (for tampering tests). */
  directory: string;
  stop(): Promise<void>;
}

/** An S3 API on 127.0.0.1 (s3rver), with one bucket; stands in for AWS S3, B2, R2 and MinIO. */
export async function startS3(bucket = 'skiffbk-backups'): Promise<S3Server> {
  const dir = await tempDir('skiffbk-s3');
  const port = await freePort();
  const server = new S3rver({ address: '127.0.0.1', port, directory: dir.path, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
  await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory: dir.path,
    stop: async () => {
      await server.close();
      await dir.remove();
    },
  };
}
