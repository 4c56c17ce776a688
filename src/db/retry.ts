/**
 * Retries work that lost a race in the catalog: serialization failures, deadlocks,
 * "tuple concurrently updated" on concurrent DDL, unique violations on role names, a
 * role another installer created between our existence check and our CREATE, and a
 * provisioning that found the template migrated under it.
 *
 * @example
 * await withRetry(() => sql.begin((tx) => provision(tx)));
 */
import { SQLSTATE } from './sqlstate.ts';

const RETRYABLE_CODES = new Set<string>([
  SQLSTATE.serializationFailure,
  SQLSTATE.deadlockDetected,
  SQLSTATE.uniqueViolation,
  SQLSTATE.duplicateObject,
]);

export function isRetryable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; name?: string };
  // The template moved on while a tenant was being cloned: retry with the new plan.
  if (e.name === 'StaleTemplateError') return true;
  if (e.code && RETRYABLE_CODES.has(e.code)) {
    // A unique violation is a race only on catalog rows (e.g. two CREATE ROLEs), never on our own data.
    return e.code !== SQLSTATE.uniqueViolation || /pg_authid|pg_namespace|pg_extension|pg_type/.test(e.message ?? '');
  }
  return e.code === SQLSTATE.internalError && /tuple concurrently (updated|deleted)/.test(e.message ?? '');
}

export async function withRetry<T>(work: () => Promise<T>, attempts = 8): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    }
  }
}
