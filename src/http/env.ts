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

/** The caller as the audit log records it: the actor and the request it came with. */
export const who = (c: { get(k: 'actor' | 'requestId'): string }) => ({
  actor: c.get('actor'),
  requestId: c.get('requestId'),
});
