// The Grafana dashboard of deploy/grafana/ against the services: every metric a panel queries is
// one a service registers (a renamed metric breaks this test, not the dashboard in silence), the
// panels use the provisioned data source, and docker-compose.yml mounts the files that exist.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createMetricsRegistry } from "@followup/service-kit";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createDispatcherMetrics } from "../../services/dispatcher/src/metrics.js";
import { createLeadIntakeMetrics } from "../../services/lead-intake/src/metrics.js";
import { createSchedulerMetrics } from "../../services/scheduler/src/metrics.js";
import { REPO_ROOT } from "../support/index.js";

const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(read("deploy/grafana/dashboards/followup-engine.json")) as {
  uid: string;
  panels: Panel[];
};
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queried = panels.filter((panel) => panel.type !== "row");

/** Series Prometheus itself adds to every scrape target, not exported by any service. */
const SCRAPE_SERIES = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);

/** Words of PromQL that are not metric names: functions, aggregations, operators, modifiers. */
const PROMQL_WORDS = new Set([
  ...["sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile"],
  ...["count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right"],
  ...["and", "or", "unless", "offset", "bool", "atan2", "rate", "irate", "increase", "delta"],
  ...["idelta", "deriv", "histogram_quantile", "abs", "ceil", "floor", "round", "clamp"],
  ...["clamp_min", "clamp_max", "label_replace", "label_join", "vector", "scalar", "time"],
  ...["timestamp", "absent", "absent_over_time", "changes", "resets", "sort", "sort_desc"],
  ...["avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time"],
  ...["last_over_time", "quantile_over_time", "predict_linear", "exp", "ln", "log2", "log10", "sqrt"],
]);

/**
 * The metric names a PromQL expression reads: identifiers outside `{...}` label matchers, `by/without
 * (...)` label lists and strings, that are not PromQL words or Grafana's `$__` variables, each followed
 * by `{`, `[`, `)`, whitespace, an operator or the end. Histogram series are named by their base.
 */
function metricNamesIn(expr: string): string[] {
  const names = new Set<string>();
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1 ()")
    .replace(/\[[^\]]*\]/g, "[]")
    .replace(/\$__\w+/g, "");
  for (const match of stripped.matchAll(
    /(?<![\w$.])([a-zA-Z_:][\w:]*)(?=\s*(?:[{[)]|\s|[-+*/%^=!<>,]|$))/g,
  )) {
    const word = match[1] ?? "";
    if (PROMQL_WORDS.has(word)) continue;
    names.add(word.replace(/_(bucket|sum|count)$/, ""));
  }
  return [...names];
}

/** Every metric the three services register (their own and the kit's default process metrics). */
function exported(): Set<string> {
  const names = new Set<string>();
  const declare = [createLeadIntakeMetrics, createSchedulerMetrics, createDispatcherMetrics];
  for (const create of declare) {
    const registry = createMetricsRegistry("grafana-test");
    create(registry);
    for (const metric of registry.getMetricsAsArray()) names.add(metric.name);
  }
  return names;
}

describe("metricNamesIn", () => {
  it("finds the metrics of an expression and not its functions, labels or variables", () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{status=~"5.."}[$__rate_interval])))',
      ),
    ).toEqual(["http_request_duration_seconds"]);
    expect(metricNamesIn("sum(lead_intake_outbox_depth) / max(lead_intake_outbox_max_leads)")).toEqual([
      "lead_intake_outbox_depth",
      "lead_intake_outbox_max_leads",
    ]);
    expect(metricNamesIn("sum by (job) (1 - up)")).toEqual(["up"]);
  });

  it("reports a made-up metric, which the services do not register", () => {
    const names = metricNamesIn("sum by (reason) (rate(followup_made_up_total[5m]))");
    expect(names).toEqual(["followup_made_up_total"]);
    expect(exported().has("followup_made_up_total")).toBe(false);
  });
});

describe("deploy/grafana/dashboards/followup-engine.json", () => {
  it("queries only metrics a service registers", () => {
    const known = exported();
    const exprs = queried.flatMap((panel) => (panel.targets ?? []).map((t) => [panel.title, t.expr ?? ""]));
    expect(exprs.length).toBeGreaterThan(20);
    const unknown: string[] = [];
    for (const [title, expr] of exprs) {
      const names = metricNamesIn(expr ?? "");
      expect(names.length, `${title}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        if (!known.has(name) && !SCRAPE_SERIES.has(name)) unknown.push(`${title}: ${name}`);
      }
    }
    expect(unknown, "panels query metrics no service registers").toEqual([]);
  });

  it("has the rows an operator looks at first", () => {
    const rows = dashboard.panels.filter((panel) => panel.type === "row").map((panel) => panel.title);
    expect(rows).toEqual(["Delivery", "Scheduling", "Intake", "Outbox", "Health"]);
  });

  it("names the provisioned Prometheus data source by uid on every panel and target", () => {
    const provisioned = parse(read("deploy/grafana/provisioning/datasources/prometheus.yml")) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    expect(provisioned.datasources).toHaveLength(1);
    const [source] = provisioned.datasources;
    expect(source?.url).toBe("http://prometheus:9090");
    const refs = queried.flatMap((panel) => [
      panel.datasource,
      ...(panel.targets ?? []).map((t) => t.datasource),
    ]);
    for (const ref of refs) expect(ref).toEqual({ type: source?.type, uid: source?.uid });
    expect(read("deploy/grafana/dashboards/followup-engine.json")).not.toContain("${DS_");
  });
});

describe("docker-compose.yml grafana", () => {
  const compose = parse(read("docker-compose.yml"), { merge: true }) as {
    services: Record<
      string,
      {
        image?: string;
        ports?: string[];
        volumes?: string[];
        environment?: Record<string, string>;
        depends_on?: string[];
      }
    >;
  };
  const grafana = compose.services.grafana;
  const mounts = new Map(
    (grafana?.volumes ?? []).map((volume) => {
      const [source = "", target = "", mode = ""] = volume.split(":");
      return [target, { source, mode }];
    }),
  );

  it("runs a pinned Grafana 11 on 127.0.0.1 after Prometheus, with no anonymous access", () => {
    expect(grafana?.image).toMatch(/^grafana\/grafana:11\.\d+\.\d+$/);
    expect(grafana?.ports).toEqual(["127.0.0.1:3000:3000"]);
    expect(grafana?.depends_on).toContain("prometheus");
    expect(grafana?.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe("false");
    expect(grafana?.environment?.GF_USERS_ALLOW_SIGN_UP).toBe("false");
    expect(grafana?.environment?.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD/);
  });

  it("mounts the provisioning and the dashboards, read-only, where the provider looks", () => {
    const provider = parse(read("deploy/grafana/provisioning/dashboards/engine.yml")) as {
      providers: { options: { path: string } }[];
    };
    const dashboards = provider.providers[0]?.options.path ?? "";
    const expected = {
      "/etc/grafana/provisioning/datasources": "./deploy/grafana/provisioning/datasources",
      "/etc/grafana/provisioning/dashboards": "./deploy/grafana/provisioning/dashboards",
      [dashboards]: "./deploy/grafana/dashboards",
    };
    for (const [target, source] of Object.entries(expected)) {
      expect(mounts.get(target), target).toEqual({ source, mode: "ro" });
      expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
    }
    expect(existsSync(join(REPO_ROOT, "deploy/grafana/dashboards/followup-engine.json"))).toBe(true);
    expect(grafana?.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(
      `${dashboards}/followup-engine.json`,
    );
  });
});
