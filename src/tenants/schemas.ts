/**
 * Input rules for tenants, shared by the HTTP API and the CLI, and the views the API answers with.
 *
 * @example
 * const input = createTenantInput.parse({ slug: 'acme-capital', name: 'Acme Capital' });
 */
import { z } from 'zod';
import { TENANT_STATUSES } from '../db/schema.ts';
import { DEFAULT_PLAN, PLAN_NAMES } from './plans.ts';

/** Names that would confuse people, URLs or PostgreSQL if used as a tenant slug. */
export const RESERVED_SLUGS = new Set([
  'admin',
  'administrator',
  'api',
  'app',
  'assets',
  'auth',
  'billing',
  'dashboard',
  'default',
  'docs',
  'extensions',
  'ftp',
  'help',
  'internal',
  'localhost',
  'login',
  'mail',
  'metrics',
  'null',
  'pg',
  'platform',
  'postgres',
  'public',
  'root',
  'security',
  'static',
  'status',
  'support',
  'system',
  'template',
  'tenant',
  'tenants',
  'test',
  'undefined',
  'www',
]);

export const slug = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(
    z
      .string()
      .min(2, 'must be at least 2 characters')
      .max(50, 'must be at most 50 characters')
      .regex(
        /^[a-z0-9]+(-[a-z0-9]+)*$/,
        'must be lowercase letters and digits in words joined by single hyphens (e.g. acme-capital)',
      )
      .refine((s) => !RESERVED_SLUGS.has(s), 'is reserved; choose another')
      .refine((s) => !s.startsWith('pg-') && !s.startsWith('tf-'), 'must not start with pg- or tf-'),
  );

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const plan = z.enum(PLAN_NAMES, { error: `must be one of: ${PLAN_NAMES.join(', ')}` });

export const createTenantInput = z.strictObject({ slug, name, plan: plan.default(DEFAULT_PLAN) });
export type CreateTenantInput = z.infer<typeof createTenantInput>;

export const updateTenantInput = z
  .strictObject({ name: name.optional(), plan: plan.optional(), status: z.enum(['active', 'suspended']).optional() })
  .refine((v) => Object.keys(v).length > 0, 'give at least one of name, plan, status');
export type UpdateTenantInput = z.infer<typeof updateTenantInput>;

export const listTenantsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
  status: z.enum(TENANT_STATUSES).optional(),
});
export type ListTenantsQuery = z.infer<typeof listTenantsQuery>;

/** A tenant as the registry API shows it. */
export const tenantView = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  plan: z.string(),
  schema: z.string(),
  status: z.enum(TENANT_STATUSES),
  createdAt: z.string(),
  updatedAt: z.string(),
  deletedAt: z.string().nullable(),
  purgeAfter: z.string().nullable(),
  provisioningMs: z.number().nullable(),
  /** The tenant's last API request, to within a quarter of an hour and a minute; null before its first. */
  lastRequestAt: z.string().nullable(),
});

/** An API key without its secret (the prefix identifies it). */
export const apiKeyView = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});

/** A new API key: the only time the key itself is shown. */
export const issuedKeyView = apiKeyView.extend({ key: z.string() });

/** A tenant's direct database login: the password is shown once. */
export const credentialsView = z.object({
  username: z.string(),
  password: z.string(),
  host: z.string(),
  port: z.number(),
  database: z.string(),
  url: z.string(),
  connectionLimit: z.number(),
  statementTimeoutMs: z.number(),
  rotatedAt: z.string(),
});
