/** The part of a prom-client Registry that {@link metricValue} reads (the harness does not depend on prom-client). */
export interface MetricRegistry {
  getSingleMetric(name: string):
    | {
        get(): Promise<{
          values: ReadonlyArray<{ value: number; labels: object; metricName?: string | undefined }>;
        }>;
      }
    | undefined;
}

/**
 * The value of a counter or gauge in a service's in-process registry for the given labels (a
 * subset; label values compared as strings), 0 when it has no such series. Throws when the
 * registry has no metric of that name, so a misspelt name never reads as 0.
 */
export async function metricValue(
  registry: MetricRegistry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find(
    (v) =>
      (v.metricName === undefined || v.metricName === name) &&
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return match?.value ?? 0;
}
