/**
 * Pieces every data-plane route shares: id parsing that turns anything unknown into the
 * same 404, page-size queries, batch limits, and error mapping for constraint failures.
 */
import type { Context } from 'hono';
import { z } from 'zod';
import { AppError, notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { parseWith, readJson } from '../http/body.ts';
import type { AppEnv } from '../http/env.ts';

/**
 * A path id, or the same 404 as for an id that does not exist: a malformed id, another
 * tenant's id and a missing id are indistinguishable.
 */
export function pathId(c: Context<AppEnv>, what: string, name = 'id'): string {
  const id = c.req.param(name) ?? '';
  if (!isUuid(id)) throw notFound(what, id);
  return id.toLowerCase();
}

export const uuid = z.string().refine(isUuid, 'must be a UUID');
export const pageQuery = { limit: z.coerce.number().int().min(1).max(500).default(50), cursor: z.string().optional() };
export const timestamp = z.iso
  .datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-01-02T15:04:05Z' })
  // Input hygiene (reliability): the ISO form allows year 0000, which PostgreSQL cannot store.
  .refine((v) => !v.startsWith('0000-'), 'year 0000 does not exist in PostgreSQL; use a year from 0001');

/** Reads a JSON batch body, answering 413 before validating when it has too many items. */
export async function batchBody<S extends z.ZodType>(
  c: Context<AppEnv>,
  key: string,
  limit: number,
  schema: S,
): Promise<z.infer<S>> {
  const raw = await readJson(c);
  const items = (raw as Record<string, unknown> | null)?.[key];
  if (Array.isArray(items) && items.length > limit) {
    throw new AppError(
      413,
      'batch_too_large',
      'Batch too large',
      `a batch holds at most ${limit} ${key}; this one has ${items.length}; split it`,
      { limit },
    );
  }
  return parseWith(schema, raw);
}
