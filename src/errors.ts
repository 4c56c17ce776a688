/**
 * Errors the platform reports to its callers. Each has an HTTP status and a stable
 * machine-readable `code`; the HTTP layer renders them as application/problem+json and
 * the CLI as one line and a non-zero exit.
 *
 * @example
 * throw new AppError(409, 'slug_taken', 'Slug already in use', 'slug "acme" is taken', { field: 'slug' });
 */
export type FieldError = { field: string; message: string };

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail?: string,
    readonly extras: { field?: string; errors?: FieldError[] } & Record<string, unknown> = {},
  ) {
    super(detail ?? title);
  }
}

export const notFound = (what: string, id: string) =>
  new AppError(404, `${what}_not_found`, `${capitalise(what)} not found`, `no ${what} ${JSON.stringify(id)}`);

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
