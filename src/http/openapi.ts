/**
 * The OpenAPI document, generated from the same zod schemas that validate requests and
 * describe responses. Routes register here through `defineRoute` (route.ts), never by hand.
 *
 * @example
 * docs.add({ method: 'get', path: '/v1/portfolios/{id}', tag: 'portfolios', auth: 'tenant', summary: 'Get', responses: { 200: view } });
 * app.get('/openapi.json', (c) => c.json(docs.document()));
 */
import { z } from 'zod';

export type RouteDoc = {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI form: `/v1/orders/{id}`. */
  path: string;
  tag: string;
  auth: 'admin' | 'tenant' | 'none';
  summary: string;
  params?: z.ZodType;
  body?: z.ZodType;
  query?: z.ZodType;
  /** Success statuses and their bodies (`null`: no body). */
  responses: Record<number, z.ZodType | null>;
  /** Content type of the success body when it is not JSON. */
  contentType?: string;
};

export class OpenApi {
  readonly #routes: RouteDoc[] = [];

  add(route: RouteDoc): void {
    this.#routes.push(route);
  }

  /** Every registered route, in registration order (for tests that check the responses). */
  routes(): readonly RouteDoc[] {
    return this.#routes;
  }

  document(): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.#routes) {
      const pathSchemas = (r.params ? jsonSchema(r.params, 'input') : {}) as { properties?: Record<string, unknown> };
      const parameters = [
        ...[...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
          name: m[1],
          in: 'path',
          required: true,
          schema: pathSchemas.properties?.[m[1]!] ?? { type: 'string' },
        })),
        ...queryParameters(r.query),
      ];
      const success = Object.fromEntries(
        Object.entries(r.responses).map(([status, schema]) => [
          status,
          {
            description: 'success',
            ...(schema
              ? { content: { [r.contentType ?? 'application/json']: { schema: jsonSchema(schema, 'output') } } }
              : {}),
          },
        ]),
      );
      (paths[r.path] ??= {})[r.method] = {
        tags: [r.tag],
        summary: r.summary,
        security: r.auth === 'none' ? [] : [{ [r.auth === 'admin' ? 'adminToken' : 'tenantKey']: [] }],
        ...(parameters.length ? { parameters } : {}),
        ...(r.body
          ? {
              requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } },
            }
          : {}),
        responses: {
          ...success,
          default: {
            description: 'error',
            content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
          },
        },
      };
    }
    return {
      openapi: '3.1.0',
      info: {
        title: 'tenantforge',
        version: '0.1.0',
        description: 'Schema-per-tenant PostgreSQL for trading and vector workloads',
      },
      paths,
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'TENANTFORGE_ADMIN_TOKEN' },
          tenantKey: { type: 'http', scheme: 'bearer', description: 'a tenant API key (POST /v1/tenants/{id}/keys)' },
        },
        schemas: {
          Problem: {
            type: 'object',
            required: ['type', 'title', 'status', 'code'],
            properties: {
              type: { type: 'string' },
              title: { type: 'string' },
              status: { type: 'integer' },
              code: { type: 'string' },
              detail: { type: 'string' },
              instance: { type: 'string' },
              requestId: { type: 'string' },
              field: { type: 'string' },
              index: { type: 'integer' },
              errors: { type: 'array', items: { type: 'object' } },
            },
          },
        },
      },
    };
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function queryParameters(query: z.ZodType | undefined): unknown[] {
  if (!query) return [];
  const schema = jsonSchema(query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(schema.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: schema.required?.includes(name) ?? false,
    schema: s,
  }));
}
