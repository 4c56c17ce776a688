/**
 * Pieces every data-plane route shares: the fields several resources use (`symbol`,
 * `side`, ids, timestamps), page-size queries, batch limits, the path id that turns
 * anything unknown into the same 404, and the one position view.
 *
 * @example
 * const trade = z.strictObject({ portfolioId: uuid, symbol, side, executedAt: timestamp });
 * defineRoute(router, docs, { ..., body: batch, readBody: batchOf('trades', 10_000) }, handler);
 */
import type { Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { parseWith, readJson } from '../http/body.ts';
import type { AppEnv } from '../http/env.ts';
import { pathUuid } from '../http/route.ts';

export const uuid = z.string().refine(isUuid, 'must be a UUID');
export const symbol = z.string().regex(/^[A-Za-z0-9.\-_/:]{1,32}$/, 'must be 1-32 letters, digits or . - _ / :');
export const side = z.enum(['buy', 'sell']);
export const pageQuery = { limit: z.coerce.number().int().min(1).max(500).default(50), cursor: z.string().optional() };
export const timestamp = z.iso
  .datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-01-02T15:04:05Z' })
  // Input hygiene (reliability): the ISO form allows year 0000, which PostgreSQL cannot store.
  .refine((v) => !v.startsWith('0000-'), 'year 0000 does not exist in PostgreSQL; use a year from 0001');

/**
 * `{id}` of a resource: a malformed id, another tenant's id and a missing id answer the
 * same 404, so they are indistinguishable.
 */
export const idParams = (resource: string) => z.object({ id: pathUuid(resource) });

/** A position as a fill leaves it (decimals as strings, trailing zeros trimmed). */
export const positionView = z.object({
  portfolioId: z.string(),
  symbol: z.string(),
  quantity: z.string(),
  averagePrice: z.string(),
  realizedPnl: z.string(),
});

/** A position of one portfolio valued at the latest bar close (null without a bar). */
export const valuedPositionView = positionView.omit({ portfolioId: true }).extend({
  lastPrice: z.string().nullable(),
  marketValue: z.string().nullable(),
  unrealizedPnl: z.string().nullable(),
  updatedAt: z.string(),
});

/** Reads a JSON batch body, answering 413 before validating when it has too many items. */
export const batchOf =
  (key: string, limit: number) =>
  async <S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.output<S>> => {
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
  };
