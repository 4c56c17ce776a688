/**
 * Control-plane row types from the drizzle schema: a row as postgres.js returns it from
 * `select *` (SQL column names, snake_case), with each column's type as drizzle declares
 * it. Hand-written row types drift from the schema; these cannot.
 *
 * @example
 * type TenantRow = RowOf<typeof tenants>;                   // { id: string; schema_name: string; created_at: Date; ... }
 * type KeyRow = Pick<RowOf<typeof apiKeys>, 'id' | 'created_at'>;
 */
import type { Table } from 'drizzle-orm';

export type RowOf<T extends Table> = {
  [K in keyof T['_']['columns'] as T['_']['columns'][K]['_']['name']]: T['$inferSelect'][K & keyof T['$inferSelect']];
};
