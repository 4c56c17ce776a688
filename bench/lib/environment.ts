/**
 * What a bench runs against: a fresh database on a throwaway local cluster (or on the
 * server DATABASE_URL names), the platform started on it, and the HTTP service on a
 * loopback port, exactly as `npm start` runs it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { loadConfig } from '../../src/config.ts';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { startThrowawayCluster, type LocalCluster } from '../../src/db/local-cluster.ts';
import { createApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform, type Platform } from '../../src/platform.ts';

export type BenchEnvironment = {
  platform: Platform;
  /** Superuser pool on the bench database. */
  su: Sql;
  baseUrl: string;
  adminToken: string;
  close(): Promise<void>;
};

export async function startBenchEnvironment(options: { poolMax?: number } = {}): Promise<BenchEnvironment> {
  let cluster: LocalCluster | undefined;
  const serverUrl = process.env.DATABASE_URL ?? (cluster = await startThrowawayCluster()).superuserUrl('postgres');
  const database = `tf_bench_${randomBytes(4).toString('hex')}`;
  const maintenance = openPool(serverUrl, { max: 1, name: 'bench-admin' });
  await maintenance.unsafe(`create database ${database}`);
  await maintenance.end();
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;

  const dataDir = mkdtempSync(join(tmpdir(), 'tf-bench-'));
  const config = loadConfig({
    DATABASE_URL: url.toString(),
    TENANTFORGE_DATA_DIR: dataDir,
    TENANTFORGE_POOL_MAX: String(options.poolMax ?? 10),
    LOG_LEVEL: 'silent',
  });
  const platform = await startPlatform(config, createLogger('silent'), { runPurgeSweeper: false });
  const app = createApp(platform);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  const su = openPool(url.toString(), { max: 4, name: 'bench-su' });

  return {
    platform,
    su,
    baseUrl: `http://127.0.0.1:${port}`,
    adminToken: platform.adminToken,
    close: async () => {
      await new Promise((r) => server.close(r));
      await su.end();
      await platform.close();
      if (cluster) await cluster.destroy();
      else {
        const admin = openPool(serverUrl, { max: 1 });
        await admin.unsafe(`drop database if exists ${database} with (force)`);
        await admin.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
