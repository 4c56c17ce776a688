import { inject, describe, expect, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';
import { chooseDatabaseSource, dockerReachable } from '../support/database-source.ts';

describe('test harness database choice', () => {
  it('prefers DATABASE_URL, then a Docker engine, then a local cluster', () => {
    expect(chooseDatabaseSource({ DATABASE_URL: 'postgres://x' }, true)).toBe('environment');
    expect(chooseDatabaseSource({ DATABASE_URL: 'postgres://x' }, false)).toBe('environment');
    expect(chooseDatabaseSource({}, true)).toBe('testcontainers');
    expect(chooseDatabaseSource({ DATABASE_URL: '' }, false)).toBe('local-cluster');
  });

  it('finds no Docker engine behind a socket that does not exist', async () => {
    expect(await dockerReachable('/nonexistent/docker.sock')).toBe(false);
  });

  it('hands tests a server that has TimescaleDB, pgvector and pgcrypto available', async () => {
    expect(['environment', 'testcontainers', 'local-cluster']).toContain(inject('databaseSource'));
    const sql = openPool(inject('databaseUrl'), { max: 1 });
    const rows =
      await sql`select name from pg_available_extensions where name in ('timescaledb', 'vector', 'pgcrypto') order by name`;
    const [preload] = await sql`select current_setting('shared_preload_libraries') as libs`;
    await sql.end();
    expect(rows.map((r) => r.name)).toEqual(['pgcrypto', 'timescaledb', 'vector']);
    expect(preload!.libs).toContain('timescaledb');
  });
});
