import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { tenantClient, type TenantClient } from '../support/tenant-client.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  asFormat1,
  backupPlatform,
  damagedCopy,
  flipByte,
  runBackup,
  seedBulk,
  tableDigests,
  testPrefix,
  testStore,
} from './support.ts';

/**
 * A TCP proxy on loopback in front of the store: it can cut every connection that has
 * carried more than N request bytes (a store failing mid-upload), or cut a request whose
 * path matches, after a delay (one object's upload failing late), and it notes the
 * request lines it forwards (to see multipart uploads started and aborted).
 */
async function faultyProxy(target: URL): Promise<{
  url: string;
  cutAfter: number | null;
  cutPath: { path: RegExp; afterMs: number } | null;
  requests: string[];
  close(): Promise<void>;
}> {
  const state = {
    cutAfter: null as number | null,
    cutPath: null as { path: RegExp; afterMs: number } | null,
    requests: [] as string[],
  };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let sent = 0;
    let doomed = false;
    client.on('data', (chunk: Buffer) => {
      if (doomed) return;
      for (const m of chunk.toString('latin1').matchAll(/^(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP/gm)) {
        state.requests.push(`${m[1]} ${m[2]}`);
        const cut = state.cutPath;
        if (cut?.path.test(m[2]!)) {
          doomed = true;
          setTimeout(() => {
            client.destroy();
            upstream.destroy();
          }, cut.afterMs);
          return;
        }
      }
      sent += chunk.length;
      if (state.cutAfter !== null && sent > state.cutAfter) {
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(s);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}

const prefix = testPrefix('faults');
let t: TestPlatform;
let proxy: Awaited<ReturnType<typeof faultyProxy>>;
let acme: TenantClient;
let other: TenantClient;
let good: { id: string; tables: Record<string, number> };

async function tenantCount(): Promise<{ schemas: number; roles: number; registry: number }> {
  const [row] = await t.su`
    select (select count(*) from pg_namespace where nspname like 'tenant\\_%') as schemas,
           -- Roles are cluster-wide and other test files make tenants meanwhile: count the ones
           -- that hold something in this database (a half-made tenant's role would).
           (select count(*) from pg_roles r where rolname like 'tenant\\_%' and exists (
              select 1 from pg_shdepend d where d.refobjid = r.oid
                and d.dbid = (select oid from pg_database where datname = current_database()))) as roles,
           (select count(*) from platform.tenants) as registry`;
  return { schemas: Number(row!.schemas), roles: Number(row!.roles), registry: Number(row!.registry) };
}

async function restore(json: unknown) {
  const res = await t.http('/v1/tenants', { method: 'POST', json });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

beforeAll(async () => {
  proxy = await faultyProxy(new URL(inject('s3').endpoint));
  t = await backupPlatform(prefix, { endpoint: proxy.url });
  acme = await tenantClient(t, 'acme');
  other = await tenantClient(t, 'other');
  const p = await acme.ok('POST', '/v1/portfolios', { name: 'Main' });
  // Enough embeddings that their object (about 9 MiB compressed) goes up as a multipart upload.
  await seedBulk(t.su, acme, { portfolios: [p.id], orders: [] }, { trades: 2_000, bars: 2_000, embeddings: 7_000 });
  good = await runBackup(t, acme.id);
  expect(good).toMatchObject({ status: 'succeeded' });
}, 180_000);

afterAll(async () => {
  await t?.close();
  await proxy?.close();
});

describe('restoring bad backups: a clear error, nothing restored, nothing left behind', () => {
  it('an unknown backup id', async () => {
    const before = await tenantCount();
    for (const backupId of ['5b0c2a3e-9a53-4c1e-9a7e-2b9b6b7e0f11', 'not-an-id']) {
      const res = await restore({ slug: 'copy-a', name: 'Copy', restoreFrom: { backupId } });
      expect(res.status).toBe(404);
      expect(res.type).toBe('application/problem+json');
      expect(res.body).toMatchObject({ code: 'backup_not_found', field: 'restoreFrom.backupId' });
    }
    expect(await tenantCount()).toEqual(before);
  });

  it("another tenant's backup: not listed under it, and refused when the caller names the tenant it expects", async () => {
    const res = await t.http(`/v1/tenants/${other.id}/backups/${good.id}`);
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe('backup_not_found');
    expect((await (await t.http(`/v1/tenants/${other.id}/backups`)).json()).items).toEqual([]);
    const before = await tenantCount();
    const r = await restore({ slug: 'copy-b', name: 'Copy', restoreFrom: { backupId: good.id, tenantId: other.id } });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('backup_tenant_mismatch');
    expect(await tenantCount()).toEqual(before);
  });

  it('lists and shows a backup: status, size, rows per table, duration', async () => {
    const list = await (await t.http(`/v1/tenants/acme/backups`)).json();
    expect(list.items.map((b: { id: string }) => b.id)).toContain(good.id);
    const shown = await (await t.http(`/v1/tenants/acme/backups/${good.id}`)).json();
    expect(shown).toMatchObject({
      status: 'succeeded',
      tables: { embeddings: 7_000, trades: 2_000, market_data: 2_000, portfolios: 1 },
    });
    expect(shown.sizeBytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(shown.durationMs).toBeGreaterThan(0);
  });

  // Each case damages a copy of the good backup's objects, under a backup id of its own.
  const copyOfGood = (damage: (objects: Map<string, Buffer>) => void) => damagedCopy(prefix, acme.id, good.id, damage);

  const editManifest = (edit: (m: any) => void) => (objects: Map<string, Buffer>) => {
    const m = JSON.parse(objects.get('manifest.json')!.toString());
    edit(m);
    objects.set('manifest.json', Buffer.from(JSON.stringify(m)));
  };

  it.each([
    [
      'an incomplete backup (no manifest)',
      (o: Map<string, Buffer>) => void o.delete('manifest.json'),
      409,
      'backup_incomplete',
    ],
    [
      'an object whose bytes do not match its checksum (one byte flipped)',
      flipByte('trades.bin.zst'),
      422,
      'backup_corrupt',
    ],
    [
      'a manifest whose row count does not match the object',
      editManifest((m) => (m.tables.find((x: any) => x.name === 'market_data').rows += 1)),
      422,
      'backup_corrupt',
    ],
    [
      'a backup from a newer template version',
      editManifest((m) => m.templateMigrations.push({ name: '9999_future', checksum: 'f'.repeat(64) })),
      422,
      'backup_template_newer',
    ],
    [
      'a manifest that claims an older template version than its tables',
      editManifest((m) => (m.templateMigrations = [])),
      422,
      'backup_incompatible',
    ],
    ['a missing table object', (o: Map<string, Buffer>) => void o.delete('orders.bin.zst'), 409, 'backup_incomplete'],
    [
      'a backup of a format this build does not know (a newer build wrote it)',
      editManifest((m) => {
        m.formatVersion = 99;
        m.encoding = { copy: 'binary', compression: 'brotli' };
      }),
      422,
      'backup_format_unsupported',
    ],
  ])('%s', async (_name, damage, status, code) => {
    const id = await copyOfGood(damage);
    const before = await tenantCount();
    const res = await restore({ slug: 'copy-c', name: 'Copy', restoreFrom: { backupId: id } });
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.type).toBe('application/problem+json');
    expect(res.body.code).toBe(code);
    expect(await tenantCount()).toEqual(before);
    expect((await t.http('/v1/tenants/copy-c')).status).toBe(404);
  });

  it('a backup an earlier build wrote (format 1, gzip objects) restores like a new one', async () => {
    const id = await copyOfGood(asFormat1);
    const res = await restore({ slug: 'copy-gzip', name: 'Copy', restoreFrom: { backupId: id } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await tableDigests(t.su, res.body.schema)).toEqual(await tableDigests(t.su, acme.schema));
  });

  it('a backup that failed is never offered for restore', async () => {
    const [row] =
      await t.su`insert into platform.backups (tenant_id, status, error) values (${acme.id}, 'failed', 'test') returning id`;
    const res = await restore({ slug: 'copy-d', name: 'Copy', restoreFrom: { backupId: row!.id } });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('backup_incomplete');
  });
});

describe('the store failing during a restore', () => {
  it('a table object that cannot be read: 503 backup_store_unavailable, nothing restored, nothing left; a retry works', async () => {
    const before = await tenantCount();
    // Every request for the trades object is cut before it is answered (the SDK's retries too).
    proxy.cutPath = { path: /\/trades\.bin\.zst/, afterMs: 0 };
    try {
      const res = await restore({ slug: 'acme-store-down', name: 'Acme', restoreFrom: { backupId: good.id } });
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(res.type).toMatch(/application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'backup_store_unavailable' });
      expect(res.body.detail).toMatch(/trades\.bin\.zst/);
    } finally {
      proxy.cutPath = null;
    }
    expect(await tenantCount()).toEqual(before);
    const again = await restore({ slug: 'acme-store-down', name: 'Acme', restoreFrom: { backupId: good.id } });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    const [trades] = await t.su.unsafe(`select count(*)::int as n from "${again.body.schema}".trades`);
    expect(trades!.n).toBe(good.tables.trades);
  });
});

describe('the store failing mid-upload', () => {
  /** Starts a backup and runs its first attempt while requests whose path matches are cut. */
  async function firstAttemptCut(cutPath: { path: RegExp; afterMs: number }) {
    proxy.cutPath = cutPath;
    const started = await (await t.http(`/v1/tenants/${acme.id}/backups`, { method: 'POST' })).json();
    try {
      return { started, firstTry: await t.backups.runNext(started.id) };
    } finally {
      proxy.cutPath = null;
    }
  }

  it('marks the backup failed after its retries, aborts its multipart uploads, leaves the tenant untouched; a retry works', async () => {
    const before = await tableDigests(t.su, acme.schema);
    proxy.requests.length = 0;
    // Each connection dies after 1 MiB of request: small requests pass, every upload of a part is cut.
    proxy.cutAfter = 1024 * 1024;
    const started = await (await t.http(`/v1/tenants/${acme.id}/backups`, { method: 'POST' })).json();
    const failed = await t.backups.runAndWait(started.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 3 });
    expect(failed.error).toMatch(/upload of .* failed/);
    const created = proxy.requests.filter((r) => /^POST .*\?uploads/.test(r)).length;
    const aborted = proxy.requests.filter((r) => /^DELETE .*uploadId=/.test(r)).length;
    expect(created).toBeGreaterThan(0);
    expect(aborted).toBeGreaterThanOrEqual(created);
    // Nothing of it in the store, and the API says so.
    expect(await testStore(prefix).list(`${prefix}/tenants/${acme.id}/${started.id}/`)).toEqual([]);
    const shown = await (await t.http(`/v1/tenants/${acme.id}/backups/${started.id}`)).json();
    expect(shown).toMatchObject({ status: 'failed' });
    expect(await tableDigests(t.su, acme.schema)).toEqual(before);

    // A retry of a failing attempt succeeds once the store is back.
    const again = await (await t.http(`/v1/tenants/${acme.id}/backups`, { method: 'POST' })).json();
    const firstTry = await t.backups.runNext(again.id);
    expect(firstTry).toMatchObject({ status: 'queued', attempts: 1 });
    proxy.cutAfter = null;
    const secondTry = await t.backups.runNext(again.id);
    expect(secondTry).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
    const res = await restore({ slug: 'acme-retried', name: 'Acme', restoreFrom: { backupId: again.id } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await tableDigests(t.su, res.body.schema)).toEqual(before);
  });

  it('an upload failing while the next table is read: that read is cancelled, nothing is left, a retry works', async () => {
    const before = await tableDigests(t.su, acme.schema);
    // The trades object fails late, while the tables after it are being read.
    const { started, firstTry } = await firstAttemptCut({ path: /\/trades\.bin\.zst/, afterMs: 300 });
    expect(firstTry).toMatchObject({ status: 'queued', attempts: 1 });
    expect(firstTry!.error).toMatch(/trades/);
    // No COPY left running or stuck on the backup's connection, and nothing of the attempt stored.
    const copying =
      await t.su`select count(*)::int as n from pg_stat_activity where query ilike 'copy (select%' and pid <> pg_backend_pid()`;
    expect(copying[0]!.n).toBe(0);
    expect(await testStore(prefix).list(`${prefix}/tenants/${acme.id}/${started.id}/`)).toEqual([]);
    const secondTry = await t.backups.runNext(started.id);
    expect(secondTry).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
    const res = await restore({ slug: 'acme-late-cut', name: 'Acme', restoreFrom: { backupId: started.id } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await tableDigests(t.su, res.body.schema)).toEqual(before);
  });

  it('the manifest failing to upload: the index object written beside it is deleted too; a retry works', async () => {
    const { started, firstTry } = await firstAttemptCut({ path: /\/manifest\.json/, afterMs: 0 });
    expect(firstTry).toMatchObject({ status: 'queued', attempts: 1 });
    expect(firstTry!.error).toMatch(/manifest/);
    expect(proxy.requests.some((r) => r.startsWith('PUT ') && r.includes(`/index/${started.id}.json`))).toBe(true);
    expect(await testStore(prefix).list(`${prefix}/index/${started.id}`)).toEqual([]);
    expect(await testStore(prefix).list(`${prefix}/tenants/${acme.id}/${started.id}/`)).toEqual([]);
    const secondTry = await t.backups.runNext(started.id);
    expect(secondTry).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
    expect(await testStore(prefix).list(`${prefix}/index/${started.id}`)).toEqual([
      `${prefix}/index/${started.id}.json`,
    ]);
  });

  it('the store unreachable: the backup fails with the cause, the tenant is untouched', async () => {
    const closed = await backupPlatform(prefix, {
      endpoint: 'http://127.0.0.1:9',
      backupJobs: { retryDelayMs: 0, maxAttempts: 1 },
    });
    try {
      const tenant = await tenantClient(closed, 'lonely');
      const started = await (await closed.http(`/v1/tenants/${tenant.id}/backups`, { method: 'POST' })).json();
      const done = await closed.backups.runAndWait(started.id);
      expect(done.status).toBe('failed');
      expect(done.error).toMatch(/ECONNREFUSED|connect/i);
    } finally {
      await closed.close();
    }
  });
});
