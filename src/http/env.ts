/** Values middleware puts on the request context. */
export type AppEnv = {
  Variables: {
    requestId: string;
    /** Who is calling, for the audit log ('admin', 'tenant:<id>'). */
    actor: string;
  };
};
