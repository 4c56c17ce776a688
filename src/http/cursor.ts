/**
 * Opaque keyset-pagination cursors over (timestamp, id), with the timestamp in
 * microseconds: a JS Date would drop them, so two rows created in one millisecond would
 * be skipped or repeated.
 *
 * @example
 * const after = decodeCursor(query.cursor);   // null when absent; 400 when malformed
 * sql`select *, ${sql.unsafe(cursorMicros('created_at'))} as created_us from t
 *     where true ${afterCursor(sql, 'created_at', after)} order by created_at, id limit 51`
 * const next = encodeCursor(last.created_us, last.id);
 * defineRoute(router, docs, { ..., responses: { 200: pageOf(orderView) } }, handler);
 */
import type { PendingQuery, Row } from 'postgres';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { isUuid } from '../ids.ts';

export type Cursor = { createdUs: string; id: string };

/** SQL expression giving a timestamptz column's microseconds since the epoch as text. */
export const cursorMicros = (column: string) => `(extract(epoch from ${column}) * 1000000)::bigint::text`;

/** Anything that builds postgres.js fragments: a pool, a transaction, a reserved connection. */
type Tag = {
  (strings: TemplateStringsArray, ...values: never[]): PendingQuery<Row[]>;
  (identifier: string): unknown;
};

/** `and (<column>, id) > (<cursor>)`, or nothing without a cursor. */
export function afterCursor(sql: Tag, column: string, after: Cursor | null): PendingQuery<Row[]> {
  if (!after) return sql``;
  return sql`and (${sql(column) as never}, id) > (timestamptz 'epoch' + ${after.createdUs as never}::bigint * interval '1 microsecond', ${after.id as never})`;
}

/**
 * One page from rows fetched with `limit + 1`: the extra row only says another page exists.
 * `position` gives a row's cursor (microseconds as text, id).
 */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  position: (row: R) => [string, string],
  view: (row: R) => T,
): { items: T[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(view), nextCursor: rows.length > limit && last ? encodeCursor(...position(last)) : null };
}

/** The response schema of a page of `item`s (what `toPage` returns). */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export function encodeCursor(createdUs: string, id: string): string {
  return Buffer.from(JSON.stringify([createdUs, id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Cursor | null {
  if (cursor === undefined) return null;
  try {
    const [createdUs, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdUs !== 'string' || !/^\d{1,17}$/.test(createdUs) || typeof id !== 'string' || !isUuid(id))
      throw new Error();
    return { createdUs, id };
  } catch {
    throw new AppError(
      400,
      'invalid_cursor',
      'Malformed cursor',
      'cursor is not one this API returned; start again without it',
      { field: 'cursor' },
    );
  }
}
