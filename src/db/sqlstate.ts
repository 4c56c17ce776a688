/**
 * PostgreSQL error codes (SQLSTATE) the platform reacts to, by name. postgres.js puts
 * the server's five-character code on `err.code`; comparing against a named constant
 * keeps a typo from silently turning a handled error into a 500, and lets a reader
 * search for every place that handles, say, a unique violation.
 *
 * @example
 * if (sqlState(err) === SQLSTATE.uniqueViolation) throw conflict();
 */
export const SQLSTATE = {
  /** Class 08: the connection went away or never came up. */
  connectionException: '08000',
  sqlclientUnableToEstablishSqlconnection: '08001',
  connectionDoesNotExist: '08003',
  sqlserverRejectedEstablishmentOfSqlconnection: '08004',
  connectionFailure: '08006',
  /** Class 22: bad data (a value the column type refuses). */
  invalidTextRepresentation: '22P02',
  foreignKeyViolation: '23503',
  uniqueViolation: '23505',
  /** Class 28: the login was refused. */
  invalidAuthorizationSpecification: '28000',
  invalidPassword: '28P01',
  invalidCatalogName: '3D000',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  insufficientPrivilege: '42501',
  /** CREATE of a role, type or constraint that exists (here: another install won the race). */
  duplicateObject: '42710',
  /** Too many connections for the server (or for the role). */
  tooManyConnections: '53300',
  /** Out of shared memory, typically max_locks_per_transaction. */
  outOfMemory: '53200',
  /** NOWAIT or lock_timeout gave up on a lock. */
  lockNotAvailable: '55P03',
  /** statement_timeout (or a cancel request). */
  queryCanceled: '57014',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  internalError: 'XX000',
} as const;

/** The SQLSTATE of a database error, or undefined for anything else. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
