/**
 * Identifier shapes shared across the service.
 *
 * @example
 * if (!isUuid(req.param('id'))) throw notFound('order', id);
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (text: string): boolean => UUID.test(text);
