/**
 * A service's Prometheus `/metrics` as numbers, so a test can say
 * `(await scrapeMetrics(url)).value("followup_jobs_total", { result: "ok" })`.
 */

/** One sample line of the Prometheus text format. */
export interface MetricSample {
  /** The sample's name as written (`followup_delivery_lateness_seconds_bucket` for a bucket). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scrape: every sample, and sums over the samples that match a label subset. */
export class MetricsSnapshot {
  constructor(readonly samples: MetricSample[]) {}

  /**
   * The sum of every sample named `name` whose labels include `labels` (0 when none matches):
   * `value("followup_jobs_total", { result: "ok" })` adds up every strategy.
   */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.matching(name, labels).reduce((sum, sample) => sum + sample.value, 0);
  }

  /** Whether any sample named `name` (with those labels) was exposed at all. */
  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.matching(name, labels).length > 0;
  }

  /** The samples named `name` whose labels include `labels`. */
  matching(name: string, labels: Record<string, string> = {}): MetricSample[] {
    return this.samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, want]) => sample.labels[key] === want),
    );
  }
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (comments and blank lines are skipped). */
export function parsePrometheusText(text: string): MetricsSnapshot {
  const samples: MetricSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const [, name = "", labelText = "", valueText = ""] = match;
    const labels: Record<string, string> = {};
    for (const label of labelText.matchAll(LABEL)) {
      labels[label[1] ?? ""] = (label[2] ?? "").replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    samples.push({ name, labels, value: parseSampleValue(valueText) });
  }
  return new MetricsSnapshot(samples);
}

function parseSampleValue(text: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** GETs `<baseUrl>/metrics` (or `url` itself when it already ends in /metrics) and parses it. */
export async function scrapeMetrics(url: string): Promise<MetricsSnapshot> {
  const target = url.endsWith("/metrics") ? url : `${url.replace(/\/$/, "")}/metrics`;
  const response = await fetch(target);
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${target}: ${response.status} ${text.slice(0, 200)}`);
  return parsePrometheusText(text);
}
