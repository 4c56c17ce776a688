/**
 * Which S3-compatible store the test run uses for backups: the `S3` URL when set
 * (`http://KEY:SECRET@host:port/bucket`), MinIO in a container when a Docker engine
 * answers, else s3rver started in this process on a free loopback port. All are real
 * servers speaking the S3 protocol; nothing is mocked.
 *
 * @example
 * const store = await startObjectStore(process.env, await dockerReachable());
 * project.provide('s3', store.settings);
 * await store.stop();
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';

export type S3Settings = {
  source: 'environment' | 'testcontainers' | 's3rver';
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  directory?: string;
};

export async function startObjectStore(
  env: Record<string, string | undefined>,
  dockerReachable: boolean,
): Promise<{ settings: S3Settings; stop(): Promise<void> }> {
  const bucket = 'tenantforge-test';
  if (env.S3) {
    const u = new URL(env.S3);
    const settings: S3Settings = {
      source: 'environment',
      endpoint: `${u.protocol}//${u.host}`,
      accessKeyId: decodeURIComponent(u.username),
      secretAccessKey: decodeURIComponent(u.password),
      region: env.AWS_REGION ?? 'us-east-1',
      bucket: u.pathname.slice(1) || bucket,
    };
    await ensureBucket(settings);
    return { settings, stop: async () => {} };
  }
  if (dockerReachable) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('minio/minio:latest')
      .withCommand(['server', '/data'])
      .withEnvironment({ MINIO_ROOT_USER: 'tenantforge', MINIO_ROOT_PASSWORD: 'tenantforge-secret' })
      .withExposedPorts(9000)
      .withWaitStrategy(Wait.forHttp('/minio/health/ready', 9000))
      .start();
    const settings: S3Settings = {
      source: 'testcontainers',
      endpoint: `http://${container.getHost()}:${container.getMappedPort(9000)}`,
      accessKeyId: 'tenantforge',
      secretAccessKey: 'tenantforge-secret',
      region: 'us-east-1',
      bucket,
    };
    await ensureBucket(settings);
    return { settings, stop: async () => void (await container.stop()) };
  }
  // s3rver keeps objects as files: a throwaway directory, removed afterwards.
  const { default: S3rver } = await import('s3rver');
  const directory = mkdtempSync(join(tmpdir(), 'tf-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = (await server.run()) as { port: number };
  const settings: S3Settings = {
    source: 's3rver',
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    region: 'us-east-1',
    bucket,
    directory,
  };
  await ensureBucket(settings);
  return {
    settings,
    stop: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function ensureBucket(s: S3Settings): Promise<void> {
  const client = new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  try {
    await client.send(new HeadBucketCommand({ Bucket: s.bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: s.bucket }));
  } finally {
    client.destroy();
  }
}

/** The service's environment for a store, with a prefix of the test's own. */
export function backupEnv(s: S3Settings, prefix: string, endpoint = s.endpoint): Record<string, string> {
  return {
    TENANTFORGE_BACKUP_URL: `s3://${s.bucket}/${prefix}`,
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: s.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
    AWS_REGION: s.region,
    TENANTFORGE_BACKUP_PATH_STYLE: 'true',
  };
}
