/**
 * Which errors mean "the database is not there right now" (down, restarting, in crash
 * recovery, out of connections), as opposed to a problem with the request. Callers
 * answer these with 503 and Retry-After, and background jobs back off on them.
 *
 * What PostgreSQL and postgres.js raise while a server restarts:
 * - before it listens again: ECONNREFUSED (nothing on the port), ECONNRESET / EPIPE
 *   (the socket died under a query), CONNECT_TIMEOUT;
 * - from postgres.js when a connection closes under a query: CONNECTION_CLOSED,
 *   CONNECTION_ENDED, CONNECTION_DESTROYED;
 * - from the server: 57P01 admin_shutdown (fast shutdown), 57P02 crash_shutdown (another
 *   backend crashed), 57P03 cannot_connect_now ("the database system is starting up",
 *   "... is in recovery mode", "... is shutting down"), class 08 connection exceptions,
 *   53300 too_many_connections.
 *
 * @example
 * if (isDatabaseUnavailable(err)) return res503();
 */
import { SQLSTATE } from './sqlstate.ts';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  // Ours: the availability gate (availability.ts) knows the database is down.
  'DATABASE_DOWN',
]);
const SERVER_CODES = new Set<string>([
  SQLSTATE.adminShutdown,
  SQLSTATE.crashShutdown,
  SQLSTATE.cannotConnectNow,
  SQLSTATE.tooManyConnections,
  SQLSTATE.connectionException,
  SQLSTATE.sqlclientUnableToEstablishSqlconnection,
  SQLSTATE.connectionDoesNotExist,
  SQLSTATE.sqlserverRejectedEstablishmentOfSqlconnection,
  SQLSTATE.connectionFailure,
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_CODES.has(code));
}

/**
 * Delay before retry number `attempt` (1-based) of background work that found the
 * database unavailable: doubling from `baseMs`, capped, with jitter so that several
 * instances do not return in step.
 */
export function backoffMs(attempt: number, baseMs = 1_000, maxMs = 60_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
