/**
 * Structured logs (pino). Secrets are redacted wherever they appear under these keys.
 *
 * @example
 * const log = createLogger('info');
 * log.info({ tenantId, durationMs }, 'tenant provisioned');
 */
import pino, { type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'password',
  '*.password',
  'token',
  '*.token',
  'key',
  '*.key',
  'secret',
  '*.secret',
  'databaseUrl',
  '*.databaseUrl',
  'appDatabaseUrl',
  '*.appDatabaseUrl',
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, redact: { paths: REDACT, censor: '<redacted>' }, base: { service: 'tenantforge' } },
    destination,
  );
}
