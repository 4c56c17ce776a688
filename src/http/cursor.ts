/**
 * Opaque keyset-pagination cursors over (created_at, id), with created_at in microseconds
 * (a JS Date would drop them: two rows created in one millisecond would be skipped or repeated).
 * In SQL, select `micros(created_at)`-style text with `CURSOR_MICROS` and compare with `afterCursor`.
 *
 * @example
 * const after = decodeCursor(query.cursor);                 // null when absent
 * sql`where (created_at, id) > (${afterTime(after)}, ${after.id})`
 * const next = encodeCursor(last.created_us, last.id);
 */
import { AppError } from '../errors.ts';

export type Cursor = { createdUs: string; id: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** SQL expression giving a timestamptz column's microseconds since the epoch as text. */
export const cursorMicros = (column: string) => `(extract(epoch from ${column}) * 1000000)::bigint::text`;

export function encodeCursor(createdUs: string, id: string): string {
  return Buffer.from(JSON.stringify([createdUs, id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Cursor | null {
  if (cursor === undefined) return null;
  try {
    const [createdUs, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdUs !== 'string' || !/^\d{1,17}$/.test(createdUs) || typeof id !== 'string' || !UUID.test(id)) throw new Error();
    return { createdUs, id };
  } catch {
    throw new AppError(400, 'invalid_cursor', 'Malformed cursor', 'cursor is not one this API returned; start again without it', { field: 'cursor' });
  }
}
