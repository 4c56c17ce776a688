/**
 * RFC 9457 problem details: every error leaves the API as application/problem+json
 * with a stable `code` that clients can branch on.
 *
 * @example
 * app.onError(problemHandler(log, { debug: false }));
 */
import type { Context, ErrorHandler } from 'hono';
import type { AppEnv } from './env.ts';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { AppError, type FieldError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { SQLSTATE } from '../db/sqlstate.ts';

export type ProblemInput = {
  status: number;
  code: string;
  title: string;
  detail?: string;
  errors?: FieldError[];
  [extra: string]: unknown;
};

export type Problem = ProblemInput & { type: string; instance: string; requestId: string };

export function problemResponse(
  c: Context<AppEnv>,
  problem: ProblemInput,
  headers: Record<string, string> = {},
): Response {
  const body: Problem = {
    ...problem,
    type: `https://tenantforge.dev/problems/${problem.code}`,
    instance: c.req.path,
    requestId: c.get('requestId'),
  };
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
}

/** Field errors from zod, with dotted paths (`items.3.price`). */
export function fieldErrors(error: ZodError): FieldError[] {
  return error.issues.map((issue) => ({ field: issue.path.map(String).join('.') || '(body)', message: issue.message }));
}

/** A 400 naming the first bad field; in a batch (`trades.3.price`) also the bad row's `index`. */
export function validationProblem(error: ZodError): AppError {
  const errors = fieldErrors(error);
  const first = errors[0]!;
  const row = error.issues[0]!.path[1];
  const index = typeof row === 'number' ? { index: row } : {};
  return new AppError(400, 'validation_failed', 'Request is not valid', `${first.field}: ${first.message}`, {
    field: first.field,
    ...index,
    errors,
  });
}

export function problemHandler(log: Logger, options: { debug: boolean }): ErrorHandler<AppEnv> {
  return (err, c) => {
    if (err instanceof AppError) {
      const headers: Record<string, string> =
        err.status === 401
          ? { 'www-authenticate': 'Bearer' }
          : err.status === 429 || err.status === 503
            ? { 'retry-after': String(err.extras.retryAfter ?? 1) }
            : {};
      return problemResponse(
        c,
        { status: err.status, code: err.code, title: err.title, detail: err.message, ...err.extras },
        headers,
      );
    }
    if (err instanceof ZodError) {
      const mapped = validationProblem(err);
      return problemResponse(c, {
        status: 400,
        code: mapped.code,
        title: mapped.title,
        detail: mapped.message,
        ...mapped.extras,
      });
    }
    if (err instanceof HTTPException) {
      const code = err.status === 413 ? 'payload_too_large' : `http_${err.status}`;
      return problemResponse(c, { status: err.status, code, title: err.message || 'Request failed' });
    }
    const e = err as Error & { code?: string };
    if (e.code === SQLSTATE.queryCanceled) {
      return problemResponse(
        c,
        {
          status: 503,
          code: 'statement_timeout',
          title: 'The database took too long',
          detail: 'the query hit its statement timeout; retry or narrow the request',
        },
        { 'retry-after': '1' },
      );
    }
    if (e.code === SQLSTATE.lockNotAvailable) {
      return problemResponse(
        c,
        {
          status: 503,
          code: 'lock_timeout',
          title: 'The data is busy',
          detail: 'a lock the request needs is held by another session of this tenant; retry shortly',
        },
        { 'retry-after': '1' },
      );
    }
    if (isDatabaseUnavailable(err)) {
      log.warn({ code: e.code, requestId: c.get('requestId'), path: c.req.path }, 'database unavailable');
      return problemResponse(
        c,
        {
          status: 503,
          code: 'database_unavailable',
          title: 'Database unavailable',
          detail: 'the database is unreachable or restarting; retry shortly',
        },
        { 'retry-after': '2' },
      );
    }
    if (typeof e.code === 'string' && e.code.startsWith('22')) {
      // A data exception (class 22) is a value PostgreSQL refused: input the edge checks
      // missed. The request is at fault, not the service; the log keeps it for fixing.
      log.warn({ err, requestId: c.get('requestId'), path: c.req.path }, 'value refused by the database');
      return problemResponse(c, {
        status: 400,
        code: 'invalid_value',
        title: 'Invalid value',
        detail: `the database refused a value of this request: ${e.message}`,
      });
    }
    log.error({ err, requestId: c.get('requestId'), path: c.req.path }, 'unhandled error');
    return problemResponse(c, {
      status: 500,
      code: 'internal_error',
      title: 'Internal error',
      detail: options.debug ? e.message : 'the error was logged with this requestId',
    });
  };
}
