/**
 * The postgres.js patch (patches/postgres+3.4.9.patch): a transaction whose backend dies
 * mid-query crashes an unpatched driver from a setImmediate (no try/catch reaches it);
 * the patched driver, the one `npm ci` installs, rejects the transaction, reconnects, and
 * the same connection answers the next queries with their own results.
 * A connection that `max_lifetime` recycles while in use strands a waiting `reserve()`
 * (every withTenant call reserves) and fails the next query; patched, both are answered.
 * A reserve that fails while the database cannot be reached must leave the pool's queue,
 * or the first connection that opens afterwards is handed to it and lost.
 * Each of those runs the same child process against the run's PostgreSQL; the unpatched
 * copy is the installed package with the patch applied in reverse. Last, in process: a
 * new connection's array-type lookup must not grow with the tables (their row types),
 * and COPY TO STDOUT hands rows over in runs, byte for byte as the original.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.ts';
import { freshDatabase, type TestDatabase } from '../support/platform.ts';

const run = promisify(execFile);
const PATCH = join(projectRoot, 'patches', 'postgres+3.4.9.patch');
const REPRO = join(projectRoot, 'test', 'reliability', 'fixtures', 'backend-dies-in-transaction.mjs');
const COPY_REPRO = join(projectRoot, 'test', 'reliability', 'fixtures', 'copy-out-last-push.mjs');
const RECYCLE_REPRO = join(projectRoot, 'test', 'reliability', 'fixtures', 'connection-recycling.mjs');
const OUTAGE_REPRO = join(projectRoot, 'test', 'reliability', 'fixtures', 'reserve-during-outage.mjs');
const CRASH = "Cannot read properties of null (reading 'write')";

async function repro(moduleEntry: string, url: string, script = REPRO): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, moduleEntry, url, '3'], { timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('postgres.js when a backend dies inside a transaction', () => {
  let db: TestDatabase;
  let unpatchedRoot: string;

  beforeAll(async () => {
    db = await freshDatabase();
    unpatchedRoot = mkdtempSync(join(tmpdir(), 'tf-unpatched-'));
    cpSync(join(projectRoot, 'node_modules', 'postgres'), join(unpatchedRoot, 'node_modules', 'postgres'), {
      recursive: true,
    });
    // The patch's paths are node_modules/postgres/...; applied in reverse here, outside any repository.
    execFileSync('git', ['apply', '--reverse', PATCH], { cwd: unpatchedRoot });
  });
  afterAll(async () => {
    await db?.drop();
    if (unpatchedRoot) rmSync(unpatchedRoot, { recursive: true, force: true });
  });

  it('the installed driver carries the patch', () => {
    const source = readFileSync(join(projectRoot, 'node_modules', 'postgres', 'src', 'connection.js'), 'utf8');
    expect(source).toContain('tenantforge patch');
    const unpatched = readFileSync(join(unpatchedRoot, 'node_modules', 'postgres', 'src', 'connection.js'), 'utf8');
    expect(unpatched).not.toContain('tenantforge patch');
  });

  it('unpatched, the process dies with the TypeError from nextWrite', async () => {
    const result = await repro(join(unpatchedRoot, 'node_modules', 'postgres', 'src', 'index.js'), db.url);
    expect(result.output).toContain(CRASH);
    expect(result.output).toMatch(/nextWrite/);
    expect(result.code).not.toBe(0);
  });

  it('patched, the work is rejected, the same connection reconnects and answers right, the process lives', async () => {
    const result = await repro(join(projectRoot, 'node_modules', 'postgres', 'src', 'index.js'), db.url);
    expect(result.output).not.toContain(CRASH);
    expect(result.output).toContain('round 1: transaction CONNECTION_CLOSED');
    expect(result.output).toContain('round 3: plain query CONNECTION_CLOSED');
    expect(result.output).not.toMatch(/asked for/); // no stale error, no hang, no answer of another query
    expect(result.output).toContain('survived 3');
    expect(result.code).toBe(0);
  });

  it('a COPY TO whose last push fills the stream: unpatched the next query waits forever; patched it is answered', async () => {
    const stuck = await repro(join(unpatchedRoot, 'node_modules', 'postgres', 'src', 'index.js'), db.url, COPY_REPRO);
    expect(stuck.output).toContain('stalled');
    expect(stuck.code).toBe(3);
    const fixed = await repro(join(projectRoot, 'node_modules', 'postgres', 'src', 'index.js'), db.url, COPY_REPRO);
    expect(fixed.output).toContain('answered after 5 copies');
    expect(fixed.code).toBe(0);
  });

  it('a connection recycled by max_lifetime while in use: unpatched a waiting reserve hangs and a query fails; patched both are answered', async () => {
    const unpatched = await repro(
      join(unpatchedRoot, 'node_modules', 'postgres', 'src', 'index.js'),
      db.url,
      RECYCLE_REPRO,
    );
    expect(unpatched.output).toContain('reserve:  no answer within 10000 ms');
    expect(unpatched.output).toContain('plain: CONNECTION_DESTROYED');
    expect(unpatched.code).toBe(3);
    const fixed = await repro(join(projectRoot, 'node_modules', 'postgres', 'src', 'index.js'), db.url, RECYCLE_REPRO);
    expect(fixed.output).toContain('reserve: answered');
    expect(fixed.output).toContain('plain: answered');
    expect(fixed.code).toBe(0);
  });

  // Every table brings a row type and its array type: at 10,000 tenants the original
  // lookup returned 100,000 of them to each new connection (0.2-0.8 s, ~40 MB of parsers).
  it('a new connection looks up no table row types, and arrays of other types still parse', async () => {
    const setup = postgres(db.url, { max: 1, onnotice: () => {} });
    await setup.unsafe(
      `create extension if not exists vector; create schema many; ${Array.from({ length: 20 }, (_, i) => `create table many.t${i} (id int);`).join(' ')}`,
    );
    const [table] = await setup<{ rowArray: number }[]>`
      select typarray as "rowArray" from pg_type where oid = 'many.t7'::regtype`;
    const rowArray = table!.rowArray;
    await setup.end();
    const lookups: Record<string, { rowTypeKnown: boolean; row: Record<string, unknown> }> = {};
    for (const [name, root] of Object.entries({ unpatched: unpatchedRoot, patched: projectRoot })) {
      const { default: driver } = await import(join(root, 'node_modules', 'postgres', 'src', 'index.js'));
      const sql = driver(db.url, { max: 1 });
      const [row] = await sql`
        select array['a', 'b']::text[] as texts, array[1, 2]::int8[] as numbers,
               ${['x', 'y']}::text[] as sent, array['[1,2]'::vector] as vectors`;
      lookups[name] = { rowTypeKnown: String(rowArray) in sql.options.parsers, row };
      await sql.end();
    }
    expect(lookups.unpatched!.rowTypeKnown).toBe(true);
    expect(lookups.patched!.rowTypeKnown).toBe(false);
    expect(lookups.patched!.row).toEqual(lookups.unpatched!.row);
    expect(lookups.patched!.row).toEqual({
      texts: ['a', 'b'],
      numbers: ['1', '2'],
      sent: ['x', 'y'],
      vectors: ['[1,2]'],
    });
  });

  // COPY TO STDOUT sends a CopyData message per row; the patch hands the rows of each
  // socket read over as one chunk, moving payloads together over the headers in place.
  // Rows of mixed sizes (many tiny, some larger than a socket read) must come out as the
  // same bytes in the same order, in far fewer chunks than rows (unpatched: one per row),
  // and the connection must answer the next query.
  it('COPY TO STDOUT hands rows over in runs, byte for byte, and the connection answers after', async () => {
    const rows = 20_000;
    const sql = postgres(db.url, { max: 1 });
    const copy = await sql`
      copy (select i, repeat(chr(97 + i % 26), case when i % 5000 = 2500 then 150000 else i % 40 end)
            from generate_series(1, ${sql.unsafe(String(rows))}) i) to stdout`.readable();
    const parts: Buffer[] = [];
    copy.on('data', (chunk: Buffer) => parts.push(chunk));
    await finished(copy);
    const [next] = await sql`select 42 as answer`;
    await sql.end();
    const expected = Array.from(
      { length: rows },
      (_, k) =>
        `${k + 1}\t${String.fromCharCode(97 + ((k + 1) % 26)).repeat((k + 1) % 5000 === 2500 ? 150_000 : (k + 1) % 40)}\n`,
    ).join('');
    expect(Buffer.concat(parts).toString() === expected).toBe(true);
    expect(parts.length).toBeLessThan(rows / 20);
    expect(next).toEqual({ answer: 42 });
  });

  // Our own patch queued a reserve's connection attempt with `peek` (see index.js onclose),
  // which left a failed reserve in the queue; the original driver drops it. Both must
  // answer the reserve made after the outage.
  it('a reserve that failed during an outage leaves the queue: the next reserve is answered, as unpatched', async () => {
    for (const root of [unpatchedRoot, projectRoot]) {
      const result = await repro(join(root, 'node_modules', 'postgres', 'src', 'index.js'), db.url, OUTAGE_REPRO);
      expect(result.output).toContain('outage: failed');
      expect(result.output).toContain('after: answered');
      expect(result.code).toBe(0);
    }
  });
});
