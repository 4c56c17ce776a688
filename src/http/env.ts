import type { TenantContext } from '../db/with-tenant.ts';

/** Values middleware puts on the request context. */
export type AppEnv = {
  Variables: {
    requestId: string;
    /** Who is calling, for the audit log ('admin', 'tenant:<id>'). */
    actor: string;
    /** The calling tenant, set by tenant-key authentication (data-plane routes only). */
    tenant: TenantContext;
  };
};
