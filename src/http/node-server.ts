/**
 * The Node HTTP server around the Hono app. Some requests never reach Hono: Node's
 * parser answers an over-long URL or header block (431) and a malformed request line
 * or header (400) itself, with an empty body; the adapter answers a request it cannot
 * turn into a URL (a bad Host header, a backslash in the path) with an empty 400. Here
 * each of those answers is application/problem+json with a stable `code`, like every
 * other error of the API.
 *
 * @example
 * const server = startHttpServer(app.fetch, { port: 3000, host: '127.0.0.1', log });
 * server.once('listening', () => console.log('up'));
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from '../log.ts';

/** Request line plus headers, in bytes (Node's default): past it, a 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

type Fetch = (request: Request) => Response | Promise<Response>;

export type HttpServerOptions = { port: number; host: string; log: Logger };

/** A problem+json body for answers given outside Hono (no route, no request context). */
export function edgeProblem(
  status: number,
  code: string,
  title: string,
  detail: string,
): { body: string; requestId: string } {
  const requestId = randomUUID();
  const body = JSON.stringify({
    type: `https://tenantforge.dev/problems/${code}`,
    title,
    status,
    code,
    detail,
    requestId,
  });
  return { body, requestId };
}

/** What Node's parser error means for the client (see the HPE_* codes of llhttp). */
export function clientErrorProblem(code: string | undefined): {
  status: number;
  code: string;
  title: string;
  detail: string;
} {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'request_header_fields_too_large',
        title: 'Request header fields too large',
        detail: `the request line and headers may hold at most ${MAX_HEADER_BYTES} bytes; shorten the URL or the headers`,
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return {
        status: 408,
        code: 'request_timeout',
        title: 'Request timeout',
        detail: 'the request did not arrive in time',
      };
    case 'HPE_INVALID_METHOD':
      return {
        status: 400,
        code: 'malformed_request',
        title: 'Malformed request',
        detail: 'the request method is not valid HTTP',
      };
    case 'HPE_INVALID_URL':
      return {
        status: 400,
        code: 'malformed_url',
        title: 'Malformed URL',
        detail:
          'the request target is not a valid URL (control characters, spaces or NUL bytes must be percent-encoded)',
      };
    default:
      return {
        status: 400,
        code: 'malformed_request',
        title: 'Malformed request',
        detail: `the request is not valid HTTP/1.1 (${code ?? 'parse error'})`,
      };
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  // Nothing to answer on a connection that is gone, or that already has a response under way.
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
    socket.destroy();
    return;
  }
  const problem = clientErrorProblem(err.code);
  const { body, requestId } = edgeProblem(problem.status, problem.code, problem.title, problem.detail);
  log.info(
    { requestId, status: problem.status, code: problem.code, parserError: err.code },
    'request refused before routing',
  );
  socket.end(
    `HTTP/1.1 ${problem.status} ${REASONS[problem.status] ?? 'Bad Request'}\r\n` +
      `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Creates the server (not yet listening); `startHttpServer` also listens. */
export function createHttpServer(fetch: Fetch, options: { host: string; log: Logger }): Server {
  const listener = getRequestListener(fetch, {
    hostname: options.host,
    // Requests the adapter cannot build (a bad Host header, a backslash in the path).
    errorHandler: (err) => {
      const { body } = edgeProblem(
        400,
        'malformed_request',
        'Malformed request',
        `the request cannot be read: ${(err as Error).message}`,
      );
      return new Response(body, { status: 400, headers: { 'content-type': 'application/problem+json' } });
    },
  });
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, listener);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, options.log));
  return server;
}

export function startHttpServer(
  fetch: Fetch,
  options: HttpServerOptions,
  onListening?: (port: number) => void,
): Server {
  const server = createHttpServer(fetch, options);
  server.listen(options.port, options.host, () => {
    const address = server.address();
    onListening?.(typeof address === 'object' && address ? address.port : options.port);
  });
  return server;
}
