/**
 * One route definition: the path is written once (OpenAPI form), and from it the route is
 * documented, registered on the router, its path, query and body validated with zod, and
 * its handler's reply typed by the response schemas declared for each success status.
 *
 * Errors keep the API's problem+json codes: a bad query or body is `validation_failed`
 * (400) naming the field; a path parameter that cannot name anything is the same 404 as
 * one that names nothing (see `pathUuid`), so a malformed id and another tenant's id are
 * indistinguishable.
 *
 * @example
 * defineRoute(router, docs, {
 *   method: 'get', path: '/v1/orders/{id}', tag: 'orders', auth: 'tenant', summary: 'Get an order',
 *   params: z.object({ id: pathUuid('order') }),
 *   responses: { 200: orderView },
 * }, async (c, { params }, reply) => reply(200, await loadOrder(params.id)));
 */
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { jsonBody, parseWith } from './body.ts';
import type { AppEnv } from './env.ts';
import type { OpenApi, RouteDoc } from './openapi.ts';

/** Success statuses and their bodies: a schema for JSON, `null` for none (204). */
export type Responses = { [status: number]: z.ZodType | null };

type Schema = z.ZodType | undefined;
type Parsed<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export type RouteSpec<P extends Schema, Q extends Schema, B extends Schema, R extends Responses> = Omit<
  RouteDoc,
  'body' | 'query' | 'responses'
> & {
  /** Path parameters, an object schema; a failure is a 404 (see `pathUuid`). */
  params?: P;
  query?: Q;
  body?: B;
  /** How the body is read before validation (default: JSON, see body.ts); e.g. a batch answers 413 first. */
  readBody?: (c: Context<AppEnv>, schema: NonNullable<B>) => Promise<Parsed<B>>;
  /** Runs before any validation (a header check whose error must come first). */
  before?: MiddlewareHandler<AppEnv>[];
  responses: R;
  /** Content type of a non-JSON success body (Prometheus text); the schema then describes a string. */
  contentType?: string;
};

declare const declared: unique symbol;
/** What a handler answers, made by its `reply` (so only a declared status with a body its schema accepts). */
export type Reply<R extends Responses> = { readonly [declared]: R; status: number; body?: unknown };

/** `reply(201, tenant)`; `reply(204)` for a status declared without a body. */
export type ReplyFn<R extends Responses> = <S extends keyof R & number>(
  status: S,
  ...body: R[S] extends z.ZodType ? [z.input<R[S]>] : []
) => Reply<R>;

export type Input<P extends Schema, Q extends Schema, B extends Schema> = {
  params: Parsed<P>;
  query: Parsed<Q>;
  body: Parsed<B>;
};

/** `/v1/orders/{id}` -> `/v1/orders/:id` (Hono's form). */
export const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

export function defineRoute<
  R extends Responses,
  P extends Schema = undefined,
  Q extends Schema = undefined,
  B extends Schema = undefined,
>(
  router: Hono<AppEnv>,
  docs: OpenApi,
  spec: RouteSpec<P, Q, B, R>,
  handler: (c: Context<AppEnv>, input: Input<P, Q, B>, reply: ReplyFn<R>) => Promise<Reply<R>>,
): void {
  const { params, query, body, readBody, before = [], responses, contentType, ...doc } = spec;
  docs.add({ ...doc, query, body, responses, contentType, params });
  const read = readBody ?? ((c: Context<AppEnv>, schema: z.ZodType) => jsonBody(c, schema));
  router.on([spec.method.toUpperCase()], [honoPath(spec.path)], ...before, async (c) => {
    const input = {
      params: params ? parsePath(params, c.req.param() as Record<string, string>) : undefined,
      query: query ? parseWith(query, c.req.query()) : undefined,
      body: body ? await read(c, body as NonNullable<B>) : undefined,
    } as Input<P, Q, B>;
    const answer = await handler(c, input, reply as unknown as ReplyFn<R>);
    const status = answer.status as 200;
    if (!('body' in answer)) return c.body(null, status as unknown as 204);
    if (contentType) return c.body(answer.body as string, status, { 'content-type': contentType });
    return c.json(answer.body as object, status);
  });
}

const reply = (status: number, ...body: unknown[]) => (body.length ? { status, body: body[0] } : { status });

/**
 * A path parameter that must be a UUID of `resource`; anything else answers the same 404
 * as a UUID that names nothing (`order_not_found`). Lower-cased, as stored.
 */
export const pathUuid = (resource: string) =>
  z
    .string()
    .refine(isUuid, { params: { resource } })
    .transform((id) => id.toLowerCase());

function parsePath<S extends z.ZodType>(schema: S, raw: Record<string, string>): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = String(issue.path[0] ?? '');
  const resource = (issue as { params?: { resource?: string } }).params?.resource ?? 'resource';
  throw notFound(resource, raw[name] ?? '');
}
