import { z } from "zod";

/**
 * The API shapes every tenant-owned, named, revisioned record shares (sequences, templates): the
 * path that names one, the view with its revision, the listing, the deletion. Each resource
 * gives them its own ids and descriptions.
 */

/** The revision a stored record was read at, which its ETag repeats. */
export const RecordRevision = z
  .number()
  .int()
  .min(1)
  .describe("The revision it was read at, also its ETag: If-Match it to replace or delete only this one");

/** `/v1/<resource>/:name`. */
export function recordParams<N extends z.ZodType>(name: N) {
  return z.object({ name });
}

/** A stored record as the API shows it: less its tenant (the caller's), with its revision. */
export function recordView<S extends z.ZodRawShape & { tenant: z.ZodType }>(recordShape: S) {
  const { tenant: _tenant, ...shape } = recordShape;
  return z.object({ ...shape, revision: RecordRevision });
}

/** `GET /v1/<resource>`: the count and the records, under the resource's plural. */
export function recordList<K extends string, V extends z.ZodType>(key: K, view: V) {
  return z.object({
    count: z.number().int().min(0),
    ...({ [key]: z.array(view) } as Record<K, z.ZodArray<V>>),
  });
}

/** `DELETE /v1/<resource>/:name`. */
export function recordDeleted<N extends z.ZodType>(name: N) {
  return z.object({ name, deleted: z.literal(true) });
}

/**
 * The four API schemas of a resource, with their ids and descriptions for the API document:
 * `<One>Params`, `<One>View`, `<One>List` (under `path`), `<One>Deleted`.
 */
export function namedRecordSchemas<
  P extends string,
  N extends z.ZodType,
  S extends z.ZodRawShape & { tenant: z.ZodType },
>(one: string, path: P, name: N, recordShape: S) {
  const route = `/v1/${path}/:name`;
  const view = recordView(recordShape).meta({
    id: `${one}View`,
    description: `data of the responses to GET and PUT ${route}`,
  });
  return {
    params: recordParams(name).meta({ id: `${one}Params`, description: `Path parameters of ${route}` }),
    view,
    list: recordList(path, view).meta({
      id: `${one}List`,
      description: `data of the response to GET /v1/${path}`,
    }),
    deleted: recordDeleted(name).meta({
      id: `${one}Deleted`,
      description: `data of the response to DELETE ${route}`,
    }),
  };
}
