/**
 * Input hygiene at the edge: text that reaches SQL must be text PostgreSQL can store.
 * PostgreSQL refuses a NUL character in `text` and in `jsonb`, and the driver silently
 * turns a lone UTF-16 surrogate into U+FFFD; both are refused here, before any handler
 * runs, with a 400 that names where the bad input was. JSON bodies also get a nesting
 * limit (deeper documents are refused before validation, which recurses) and must have
 * finite numbers (`JSON.parse` reads `1e999` as Infinity).
 *
 * @example
 * app.use(urlHygiene());                       // path segments and query parameters
 * const body = parseJsonBytes(await c.req.arrayBuffer()); // in body readers
 */
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.ts';
import type { AppEnv } from './env.ts';

/** Deepest nesting a JSON body may have (objects and arrays); real payloads need 3 or 4. */
export const MAX_JSON_DEPTH = 32;

// With the u flag a surrogate pair reads as one code point, so only lone halves match.
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Why a piece of text cannot go to PostgreSQL, or undefined when it can. */
export function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character (U+0000), which PostgreSQL cannot store';
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

function invalidText(field: string, problem: string): AppError {
  return new AppError(400, 'invalid_characters', 'Invalid characters', `${field} ${problem}`, { field });
}

function malformedUrl(field: string): AppError {
  return new AppError(
    400,
    'malformed_url',
    'Malformed URL',
    `${field} has a bad percent-encoding (each % must start a valid UTF-8 sequence like %C3%A9)`,
    { field },
  );
}

function decodeComponent(raw: string, field: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw malformedUrl(field);
  }
  const problem = textProblem(decoded);
  if (problem) throw invalidText(field, problem);
  return decoded;
}

/** Checks every path segment and query parameter (names and values) of a request URL. */
export function checkUrl(url: string): void {
  const u = new URL(url);
  for (const [i, segment] of u.pathname.split('/').entries())
    decodeComponent(segment, i === 0 ? 'the path' : `path segment ${i}`);
  if (u.search.length <= 1) return;
  for (const pair of u.search.slice(1).split('&')) {
    const eq = pair.indexOf('=');
    const [rawName, rawValue] = eq === -1 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    const name = decodeComponent(rawName.replaceAll('+', ' '), 'a query parameter name');
    decodeComponent(rawValue.replaceAll('+', ' '), `query parameter ${JSON.stringify(name)}`);
  }
}

/** Middleware: 400 for a URL whose path or query holds bad percent-encoding, NUL or invalid Unicode. */
export function urlHygiene(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    checkUrl(c.req.url);
    await next();
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a JSON body from its bytes: 400 `invalid_characters` for bytes that are not
 * UTF-8, `malformed_json` for bad JSON, then `checkJson` on the result.
 */
export function parseJsonBytes(bytes: ArrayBuffer): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new AppError(400, 'invalid_characters', 'Invalid characters', 'the body is not valid UTF-8', {
      field: '(body)',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AppError(
      400,
      'malformed_json',
      'Malformed JSON',
      `the body is not valid JSON: ${(err as Error).message}`,
    );
  }
  checkJson(value);
  return value;
}

/**
 * Walks a parsed JSON value: every string (keys too) must be storable text, every
 * number finite, and nesting at most MAX_JSON_DEPTH. Field paths are dotted, as in
 * validation errors (`items.3.metadata.note`).
 */
export function checkJson(value: unknown): void {
  // Explicit stack: the walk itself must not be the thing that overflows. A node's path is
  // spelled out only for an error (a 1,000-row batch has ~10,000 nodes).
  type Node = { value: unknown; key: string; parent: Node | null; depth: number };
  const pathOf = (n: Node | null): string =>
    n?.parent ? (n.parent.parent ? `${pathOf(n.parent)}.${n.key}` : n.key) : '';
  const stack: Node[] = [{ value, key: '', parent: null, depth: 0 }];
  while (stack.length) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) throw invalidText(pathOf(node) || '(body)', problem);
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) {
        const field = pathOf(node) || '(body)';
        throw new AppError(
          400,
          'validation_failed',
          'Request is not valid',
          `${field}: must be a finite number (this one overflows a double)`,
          { field, errors: [{ field, message: 'must be a finite number' }] },
        );
      }
    } else if (v !== null && typeof v === 'object') {
      if (node.depth >= MAX_JSON_DEPTH) {
        const field = pathOf(node) || '(body)';
        throw new AppError(
          400,
          'too_deeply_nested',
          'JSON nested too deeply',
          `${field}: JSON may nest at most ${MAX_JSON_DEPTH} levels of objects and arrays`,
          { field, limit: MAX_JSON_DEPTH },
        );
      }
      const depth = node.depth + 1;
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: String(i), parent: node, depth });
        continue;
      }
      for (const key of Object.keys(v)) {
        const keyProblem = textProblem(key);
        if (keyProblem) {
          const path = pathOf(node);
          throw invalidText(`the name of ${path ? `a field in ${path}` : 'a field'}`, keyProblem);
        }
        stack.push({ value: (v as Record<string, unknown>)[key], key, parent: node, depth });
      }
    }
  }
}
