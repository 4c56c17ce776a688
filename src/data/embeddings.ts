/**
 * Embeddings (pgvector, 384 dimensions, HNSW cosine index): batch upsert, similarity
 * search with an optional metadata filter, get and delete. A selective filter is answered
 * exactly; otherwise search uses HNSW iterative scans, so a filtered top-k still returns
 * k rows when k matching rows exist.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { withTenant, type Runtime } from '../db/with-tenant.ts';
import { AppError, notFound } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { batchOf, idParams } from './common.ts';
import { toVector } from './vector-text.ts';

export const DIMENSIONS = 384;
export const EMBEDDING_BATCH_LIMIT = 1_000;
const MAX_K = 100;

/**
 * HNSW candidate list size for a top-k search: 200 (pgvector's default is 40), more for
 * a large k. The `vector-search` bench measures the recall it buys at 100,000 vectors.
 */
export const efSearch = (k: number) => Math.min(1000, Math.max(200, k * 4));

/**
 * A filter matching at most this many rows is answered by exact search over them (a few
 * milliseconds for 384 dimensions) rather than the HNSW graph, whose walk toward the query
 * can pass a small, distant set of matches by.
 */
const EXACT_SEARCH_MAX_ROWS = 5_000;

/** pgvector stores 4-byte floats: 1e308 is a finite double but out of range for it. */
const FLOAT4_MAX = 3.4028234663852886e38;
const vector = z
  .array(
    z
      .number()
      .refine(Number.isFinite, 'must be a finite number')
      .refine((x) => Math.abs(x) <= FLOAT4_MAX, 'must be within ±3.4e38 (a 4-byte float)'),
    { error: `must be an array of ${DIMENSIONS} numbers` },
  )
  .length(DIMENSIONS, `must have exactly ${DIMENSIONS} dimensions`);
/** Serialized size cap of one metadata object (nesting is capped for every body in http/hygiene.ts). */
const METADATA_MAX_BYTES = 16 * 1024;
const metadata = z
  .record(z.string(), z.json())
  .refine(
    (m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES,
    `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
  );
const item = z.strictObject({
  externalId: z.string().min(1).max(200).optional(),
  content: z.string().max(100_000, 'must be at most 100,000 characters'),
  metadata: metadata.default({}),
  embedding: vector,
});
const batch = z.strictObject({ items: z.array(item).min(1, 'must hold at least one item') });
const search = z.strictObject({
  vector,
  k: z.number().int().min(1).max(MAX_K, `must be at most ${MAX_K}`).default(10),
  filter: metadata.optional(),
});

const resultView = z.object({
  id: z.string(),
  externalId: z.string().nullable(),
  content: z.string(),
  metadata: z.record(z.string(), z.unknown()),
  distance: z.number(),
});
const embeddingView = z.object({
  id: z.string(),
  externalId: z.string().nullable(),
  content: z.string(),
  metadata: z.record(z.string(), z.unknown()),
  embedding: z.array(z.number()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export function embeddingRoutes(app: Runtime, docs: OpenApi): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'embeddings';
  const auth = 'tenant';
  const params = idParams('embedding');

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/embeddings:batch',
      tag,
      auth,
      summary: `Upsert up to ${EMBEDDING_BATCH_LIMIT} embeddings (by externalId when given)`,
      body: batch,
      readBody: batchOf('items', EMBEDDING_BATCH_LIMIT),
      responses: { 201: z.object({ ids: z.array(z.string()) }) },
    },
    async (c, { body: { items } }, reply) => {
      const seen = new Map<string, number>();
      items.forEach((it, i) => {
        if (it.externalId === undefined) return;
        if (seen.has(it.externalId)) {
          throw new AppError(
            400,
            'duplicate_external_id',
            'Duplicate externalId in batch',
            `items.${i}.externalId repeats items.${seen.get(it.externalId)}`,
            { field: `items.${i}.externalId`, index: i },
          );
        }
        seen.set(it.externalId, i);
      });
      const records = items.map((it, ord) => ({
        ord,
        external_id: it.externalId ?? null,
        content: it.content,
        metadata: it.metadata,
        embedding: toVector(it.embedding),
      }));
      const ids = await withTenant(app, c.get('tenant'), async (tx) => {
        const rows = await tx<{ id: string; ord: number }[]>`
        with input as (
          select * from jsonb_to_recordset(${tx.json(records)}) as x(ord int, external_id text, content text, metadata jsonb, embedding text)
        ), upserted as (
          insert into embeddings (external_id, content, metadata, embedding)
          select external_id, content, metadata, embedding::vector from input order by ord
          on conflict (external_id) where external_id is not null do update
            set content = excluded.content, metadata = excluded.metadata, embedding = excluded.embedding
          returning id, external_id
        )
        select u.id, i.ord from upserted u join input i on i.external_id = u.external_id
        union all
        select id, null from upserted where external_id is null`;
        // Rows with an externalId map back by it; the rest keep insertion order.
        const byOrd = new Map(rows.filter((r) => r.ord !== null).map((r) => [r.ord, r.id]));
        const anonymous = rows.filter((r) => r.ord === null).map((r) => r.id);
        return records.map((r) => (r.external_id === null ? anonymous.shift()! : byOrd.get(r.ord)!));
      });
      return reply(201, { ids });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/embeddings/search',
      tag,
      auth,
      summary: `Top-k (k <= ${MAX_K}) by cosine distance, optionally where metadata contains filter`,
      body: search,
      responses: { 200: z.object({ items: z.array(resultView) }) },
    },
    async (c, { body: q }, reply) => {
      const rows = await withTenant(
        app,
        c.get('tenant'),
        async (tx) => {
          const vector = toVector(q.vector);
          const nearest = () => tx`
        select * from (
          select id, external_id, content, metadata, embedding <=> ${vector}::vector as distance
          from embeddings
          ${q.filter ? tx`where metadata @> ${tx.json(q.filter as never)}` : tx``}
          order by embedding <=> ${vector}::vector
          limit ${q.k}
        ) found order by distance`;
          const exact = async () => {
            await tx`select set_config('enable_indexscan', 'off', true)`;
            return nearest();
          };
          if (q.filter) {
            // A selective filter: exact search over the rows the metadata index finds is cheap
            // and complete, where a graph walk toward the query could pass them all by.
            const [{ matches }] = await tx<[{ matches: number }]>`
          select count(*)::int as matches from (select 1 from embeddings where metadata @> ${tx.json(q.filter as never)} limit ${EXACT_SEARCH_MAX_ROWS + 1}) m`;
            if (matches <= EXACT_SEARCH_MAX_ROWS) return exact();
          }
          const found = await nearest();
          if (!q.filter || found.length === q.k) return found;
          // The HNSW scan gave up (hnsw.max_scan_tuples) before finding k matching rows: none
          // are near the query. Exact search over the matching rows is complete.
          return exact();
        },
        {
          readOnly: true,
          // Relaxed order lets the index keep scanning past filtered-out rows; the outer
          // ORDER BY restores exact order among what it found.
          settings: { 'hnsw.iterative_scan': 'relaxed_order', 'hnsw.ef_search': efSearch(q.k) },
        },
      );
      const items = rows.map((r) => ({
        id: r.id,
        externalId: r.external_id,
        content: r.content,
        metadata: r.metadata,
        distance: Number(r.distance),
      }));
      return reply(200, { items });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/embeddings/{id}',
      tag,
      auth,
      summary: 'Get an embedding (with its vector)',
      params,
      responses: { 200: embeddingView },
    },
    async (c, { params: { id } }, reply) => {
      const [row] = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx`
      select id, external_id, content, metadata, embedding::text as embedding, created_at, updated_at from embeddings where id = ${id}`,
        { readOnly: true },
      );
      if (!row) throw notFound('embedding', id);
      return reply(200, {
        id: row.id,
        externalId: row.external_id,
        content: row.content,
        metadata: row.metadata,
        embedding: JSON.parse(row.embedding),
        createdAt: (row.created_at as Date).toISOString(),
        updatedAt: (row.updated_at as Date).toISOString(),
      });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'delete',
      path: '/v1/embeddings/{id}',
      tag,
      auth,
      summary: 'Delete an embedding',
      params,
      responses: { 204: null },
    },
    async (c, { params: { id } }, reply) => {
      const deleted = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx`delete from embeddings where id = ${id} returning id`,
      );
      if (deleted.length === 0) throw notFound('embedding', id);
      return reply(204);
    },
  );

  return routes;
}
