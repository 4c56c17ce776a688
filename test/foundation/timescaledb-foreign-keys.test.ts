/**
 * Foreign keys and hypertables on the TimescaleDB this project runs: scripts/bootstrap-db.sh
 * builds it with patches/timescaledb-*-referencing-fk-lookup.diff, which changes how
 * TimescaleDB finds the foreign keys that reference a table (through pg_depend's index
 * instead of a scan of all of pg_constraint). What it decides must stay TimescaleDB's:
 * a key referencing a hypertable reaches each new chunk, a key of a hypertable is
 * copied to its chunks, and a key from one hypertable to another is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { freshDatabase, type TestDatabase } from '../support/platform.ts';

describe('foreign keys on hypertables (the TimescaleDB build)', () => {
  let db: TestDatabase;
  let sql: Sql;

  beforeAll(async () => {
    db = await freshDatabase();
    sql = openPool(db.url, { max: 1, name: 'test-fk' });
    await sql`create extension if not exists timescaledb`;
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('gives each new chunk of a referenced hypertable the key that references it, which then holds', async () => {
    await sql.unsafe(`
      create table prices (time timestamptz not null, id int, primary key (id, time));
      select create_hypertable('prices', 'time', chunk_time_interval => interval '1 day');
      insert into prices values ('2026-01-01', 1);
      create table quotes (id int, time timestamptz, foreign key (id, time) references prices (id, time));
      insert into prices values ('2026-01-05', 2), ('2026-01-09', 3);`);
    const keys = await sql<{ references: string }[]>`
      select confrelid::regclass::text as references from pg_constraint
      where conrelid = 'quotes'::regclass and contype = 'f' and confrelid <> 'prices'::regclass`;
    const chunks = await sql<{ chunk: string }[]>`select show_chunks('prices')::text as chunk`;
    // One key per chunk, those made after the key as well as the one before it.
    expect(keys.map((k) => k.references).sort()).toEqual(chunks.map((c) => c.chunk).sort());
    expect(chunks).toHaveLength(3);

    await sql`insert into quotes values (3, '2026-01-09')`;
    await expect(sql`insert into quotes values (4, '2026-01-09')`).rejects.toMatchObject({ code: '23503' });
    await expect(sql`delete from prices where id = 3`).rejects.toMatchObject({ code: '23503' });
    await sql`delete from prices where id = 2`;
  });

  it("copies a hypertable's own foreign key to its chunks", async () => {
    await sql.unsafe(`
      create table accounts (id int primary key);
      insert into accounts values (1);
      create table fills (time timestamptz not null, account int references accounts (id));
      select create_hypertable('fills', 'time');
      insert into fills values ('2026-02-01', 1);`);
    await expect(sql`insert into fills values ('2026-03-01', 2)`).rejects.toMatchObject({ code: '23503' });
    const [chunkKeys] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_constraint c
      join pg_inherits i on i.inhrelid = c.conrelid
      where i.inhparent = 'fills'::regclass and c.contype = 'f' and c.confrelid = 'accounts'::regclass`;
    expect(chunkKeys!.n).toBeGreaterThan(0);
  });

  it('refuses to make a hypertable of a table another hypertable references', async () => {
    await sql.unsafe(`
      create table bars (time timestamptz not null, id int);
      create unique index on bars (id, time);
      create table marks (time timestamptz not null, bar int, bar_time timestamptz,
        foreign key (bar, bar_time) references bars (id, time));
      select create_hypertable('marks', 'time');`);
    await expect(sql`select create_hypertable('bars', 'time')`).rejects.toThrow(
      /cannot have FOREIGN KEY constraints to hypertable "bars"/,
    );
  });
});
