import { readdirSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';

describe('the local PostgreSQL cluster', () => {
  // Tenants' tables, indexes and chunks are files of their own; a backend serving many
  // tenants must keep them open rather than close and reopen them on each request.
  it.runIf(inject('databaseSource') === 'local-cluster')(
    'lets one backend keep more than 1,000 relation files open',
    async () => {
      const sql = openPool(inject('databaseUrl'), { max: 1 });
      try {
        await sql`create schema fd_probe`;
        await sql.unsafe(`do $$ begin
          for i in 1..1200 loop execute format('create table fd_probe.t%s (x int); insert into fd_probe.t%s values (1)', i, i); end loop;
        end $$`);
        // Reading a table opens its file, and the backend keeps it open for later reads.
        await sql.unsafe(`do $$ begin
          for i in 1..1200 loop execute format('select from fd_probe.t%s', i); end loop;
        end $$`);
        const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
        expect(readdirSync(`/proc/${backend!.pid}/fd`).length).toBeGreaterThan(1_200);
      } finally {
        await sql`drop schema if exists fd_probe cascade`;
        await sql.end();
      }
    },
  );
});
