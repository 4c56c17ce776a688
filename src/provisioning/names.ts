/**
 * Tenant schema, role and login names now live in `db/names.ts` (the toolkit layer, so
 * `withTenant` can validate them without importing a feature folder). This re-export keeps
 * the importers that are not moved yet working; new code imports `db/names.ts`.
 *
 * @example
 * import { tenantRoleName } from '../db/names.ts';
 */
export * from '../db/names.ts';
