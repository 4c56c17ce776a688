/**
 * Starts (or finds) the PostgreSQL every test file uses and hands its superuser URL
 * to the tests by injection (`inject('databaseUrl')`). Test files create their own
 * databases in it (see platform.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startThrowawayCluster } from '../../src/runtime/local-cluster.ts';
import { chooseDatabaseSource, dockerReachable, type DatabaseSource } from './database-source.ts';
import { startObjectStore, type S3Settings } from './object-store.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the server's maintenance database. */
    databaseUrl: string;
    databaseSource: DatabaseSource;
    /** The runtime role's password; one per run, as roles are cluster-wide. */
    appPassword: string;
    /** The S3-compatible store backups go to (each test file uses a prefix of its own). */
    s3: S3Settings;
    /** The run's folder for temporary files (scratch.ts), deleted when the run ends. */
    scratchRoot: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const docker = await dockerReachable();
  const source = chooseDatabaseSource(process.env, docker);
  let url: string;
  let teardown = async () => {};
  if (source === 'environment') {
    url = process.env.DATABASE_URL!;
  } else if (source === 'testcontainers') {
    const { GenericContainer, Wait } = await import('testcontainers');
    const password = randomBytes(12).toString('hex');
    const container = await new GenericContainer('timescale/timescaledb-ha:pg16')
      .withEnvironment({ POSTGRES_PASSWORD: password })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    url = `postgres://postgres:${password}@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
    teardown = async () => void (await container.stop());
  } else {
    const cluster = await startThrowawayCluster();
    url = cluster.superuserUrl('postgres');
    teardown = () => cluster.destroy();
  }
  const store = await startObjectStore(process.env, docker);
  const scratchRoot = mkdtempSync(join(tmpdir(), 'tf-test-run-'));
  const stopDatabase = teardown;
  teardown = async () => {
    await store.stop();
    await stopDatabase();
    rmSync(scratchRoot, { recursive: true, force: true });
  };
  console.log(`tests use PostgreSQL from: ${source}; S3 from: ${store.settings.source}`);
  project.provide('s3', store.settings);
  project.provide('scratchRoot', scratchRoot);
  project.provide('databaseUrl', url);
  project.provide('databaseSource', source);
  project.provide('appPassword', process.env.TENANTFORGE_APP_PASSWORD ?? randomBytes(18).toString('base64url'));
  return teardown;
}
