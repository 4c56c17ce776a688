/**
 * The OpenAPI document, generated from the same zod schemas that validate requests.
 * Each route file registers its routes next to their handlers.
 *
 * @example
 * docs.add({ method: 'post', path: '/v1/portfolios', tag: 'portfolios', auth: 'tenant', summary: 'Create', body: schema, status: 201 });
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
  body?: z.ZodType;
  query?: z.ZodType;
  response?: z.ZodType;
  status?: number;
};

export class OpenApi {
  readonly #routes: RouteDoc[] = [];

  add(route: RouteDoc): void {
    this.#routes.push(route);
  }

  document(): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.#routes) {
      const parameters = [
        ...[...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
          name: m[1],
          in: 'path',
          required: true,
          schema: { type: 'string' },
        })),
        ...queryParameters(r.query),
      ];
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
          [String(r.status ?? 200)]: {
            description: 'success',
            ...(r.response ? { content: { 'application/json': { schema: jsonSchema(r.response, 'output') } } } : {}),
          },
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
