/**
 * The pgvector version the service runs with: readiness warns about builds with known
 * HNSW defects (older than 0.8.3), and start-up brings a database whose pgvector is
 * older than the server's build up to date with ALTER EXTENSION vector UPDATE.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';
import { compareVersions, pgvectorWarning, PGVECTOR_SAFE_VERSION } from '../../src/db/versions.ts';
import { checkReadiness } from '../../src/health.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform } from '../../src/platform.ts';
import { freshDatabase, testConfig, testPlatform } from '../support/platform.ts';

describe('extension versions', () => {
  it('compares dotted versions part by part', () => {
    expect(compareVersions('0.8.0', '0.8.3')).toBe(-1);
    expect(compareVersions('0.8.10', '0.8.9')).toBe(1);
    expect(compareVersions('0.8.3', '0.8.3')).toBe(0);
    expect(compareVersions('0.8', '0.8.0')).toBe(0);
    expect(compareVersions('1.0.0', '0.99.99')).toBe(1);
  });

  it('warns about pgvector older than 0.8.3, naming the version and the fix, and not about newer ones', () => {
    expect(pgvectorWarning('0.8.0')).toMatch(/pgvector 0\.8\.0 is older than 0\.8\.3.*bootstrap-db\.sh/);
    expect(pgvectorWarning('0.8.2')).toBeDefined();
    expect(pgvectorWarning('0.8.3')).toBeUndefined();
    expect(pgvectorWarning('0.8.7')).toBeUndefined();
    expect(pgvectorWarning(null)).toBeUndefined();
  });

  it('/readyz lists the warning for the installed pgvector and stays ready', async () => {
    const t = await testPlatform();
    try {
      const readiness = await checkReadiness(t);
      const installed = t.server.extensions.vector!;
      expect(readiness.status).toBe('ready');
      const old = compareVersions(installed, PGVECTOR_SAFE_VERSION) < 0;
      expect(readiness.warnings).toEqual(old ? [expect.stringContaining(`pgvector ${installed} is older than`)] : []);
      const res = await t.http('/readyz');
      expect(res.status).toBe(200);
      expect((await res.json()).warnings).toEqual(readiness.warnings);
    } finally {
      await t.close();
    }
  });

  it('start-up updates a database whose pgvector is older than the server build (ALTER EXTENSION vector UPDATE)', async () => {
    const db = await freshDatabase();
    const su = openPool(db.url, { max: 1, name: 'test-su' });
    try {
      // Build the previous version's state: the current version minus what the last
      // upgrade script added, recorded under the previous version's number.
      const [{ available }] =
        (await su`select default_version as available from pg_available_extensions where name = 'vector'`) as unknown as [
          { available: string },
        ];
      const [{ sharedir }] =
        (await su`select setting as sharedir from pg_config where name = 'SHAREDIR'`) as unknown as [
          { sharedir: string },
        ];
      const scripts = (await su<{ name: string }[]>`select pg_ls_dir(${`${sharedir}/extension`}) as name`).map(
        (r) => r.name,
      );
      const step = scripts
        .map((n) => new RegExp(`^vector--([\\d.]+)--${available.replaceAll('.', '\\.')}\\.sql$`).exec(n))
        .find(Boolean);
      expect(step, `an upgrade script to ${available}`).toBeDefined();
      const previous = step![1]!;
      const sql = readFileSync(`${sharedir}/extension/${step![0]}`, 'utf8').replace(/^--.*$|^\\echo.*$/gm, '');
      const statements = sql
        .split(';')
        .map((s) => s.replace(/\s+/g, ' ').trim())
        .filter(Boolean);
      await su.unsafe('create schema if not exists extensions');
      await su.unsafe('create extension vector schema extensions');
      await su.unsafe('set search_path = extensions, public');
      for (const statement of [...statements].reverse()) {
        const fn = /^CREATE FUNCTION (\w+)\(([^)]*)\)/i.exec(statement);
        const cast = /^CREATE CAST \(([^)]*)\)/i.exec(statement);
        if (fn) {
          await su.unsafe(`alter extension vector drop function ${fn[1]}(${fn[2]})`);
          await su.unsafe(`drop function ${fn[1]}(${fn[2]})`);
        } else if (cast) {
          await su.unsafe(`alter extension vector drop cast (${cast[1]})`);
          await su.unsafe(`drop cast (${cast[1]})`);
        } else throw new Error(`this test cannot undo "${statement.slice(0, 80)}" of ${step![0]}; teach it`);
      }
      await su`update pg_extension set extversion = ${previous} where extname = 'vector'`;

      const platform = await startPlatform(testConfig(db.url), createLogger('silent'), {
        runPurgeSweeper: false,
        runValidatorJob: false,
      });
      await platform.close();
      const [after] = await su<{ extversion: string }[]>`select extversion from pg_extension where extname = 'vector'`;
      expect(after!.extversion).toBe(available);
      // What the update script creates exists again.
      for (const statement of statements) {
        const fn = /^CREATE FUNCTION (\w+)\(([^)]*)\)/i.exec(statement);
        if (fn)
          expect((await su`select to_regprocedure(${`extensions.${fn[1]}(${fn[2]})`}) as p`)[0]!.p).not.toBeNull();
      }
    } finally {
      await su.end();
      await db.drop();
    }
  });
});
