import { ApiError, get } from "../api.js";
import { h, replace } from "../dom.js";

/**
 * Conversion by variant (`/v1/reports`) and the model registry (`/ops/model`). Until lead-intake
 * serves them the page says so; once they answer, what they answer is shown.
 */

/** Bars of a list of rows that carry a variant and a rate (shapes vary while the reports land). */
function chart(rows) {
  const rated = rows.filter((r) => typeof (r.conversion_rate ?? r.rate) === "number");
  if (rated.length === 0) return null;
  return h(
    "table",
    { id: "variant-chart" },
    h(
      "thead",
      null,
      h("tr", null, h("th", null, "variant"), h("th", null, "conversion"), h("th", null, "interval")),
    ),
    h(
      "tbody",
      null,
      ...rated.map((r) => {
        const rate = r.conversion_rate ?? r.rate;
        const interval = r.interval ?? r.ci ?? null;
        const bar = h("span", { class: "bar" });
        // Through the CSSOM: a style attribute would need 'unsafe-inline' in the policy.
        bar.style.width = `${Math.max(1, Math.round(rate * 300))}px`;
        return h(
          "tr",
          null,
          h("td", null, String(r.variant ?? r.name ?? "")),
          h("td", null, bar, ` ${(rate * 100).toFixed(1)}%`),
          h("td", null, interval ? JSON.stringify(interval) : ""),
        );
      }),
    ),
  );
}

async function section(title, path, id) {
  const body = h("section", { id }, h("h2", null, title));
  try {
    const { data } = await get(path);
    const rows = Array.isArray(data) ? data : (data?.variants ?? data?.rows ?? []);
    body.append(chart(Array.isArray(rows) ? rows : []) ?? "", h("pre", null, JSON.stringify(data, null, 2)));
  } catch (err) {
    body.append(
      h(
        "p",
        { class: "notice", "data-state": "unavailable" },
        err instanceof ApiError && err.status === 404
          ? `Not available: this engine does not serve ${path} yet.`
          : `Could not read ${path}: ${err.message}`,
      ),
    );
  }
  return body;
}

export function render(root) {
  const body = h("div");
  root.append(h("h1", null, "Experiments"), body);
  void Promise.all([
    section("Conversion by variant", "/v1/reports", "reports"),
    section("Model", "/ops/model", "model"),
  ]).then((parts) => replace(body, ...parts));
}
