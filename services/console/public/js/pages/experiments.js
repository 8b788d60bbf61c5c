import { ApiError, call, get, query } from "../api.js";
import { confirmation, h, replace, submitted, table, time } from "../dom.js";

/**
 * Conversion by variant and holdout (the reports service's `/v1/reports`, through the console's
 * proxy) and the model registry (lead-intake's `/ops/model`). A section says "not available"
 * only when its route answers 404 or its service cannot be reached.
 */

/** The built-in sequence of a tenant without sequences of its own (contracts' BUILT_IN_SEQUENCE). */
const BUILT_IN = "default";
const PROMOTE_COMMAND = "pnpm --filter @followup/lead-intake train:outcomes";
const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes, built through the DOM (no markup parsed). */
function svg(tag, attrs, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs ?? {})) element.setAttribute(name, String(value));
  for (const child of children)
    element.append(child instanceof Node ? child : document.createTextNode(child));
  return element;
}

const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`);

/** A failure as a section shows it: "not available" for a missing route or an unreachable service. */
function failure(path, err) {
  const missing =
    err instanceof ApiError && (err.status === 404 || err.status === 0 || err.code === "service_unavailable");
  return h(
    "p",
    { class: missing ? "notice" : "error", role: "alert", "data-state": missing ? "unavailable" : "error" },
    missing ? `Not available: ${path} answers ${err.status || "nothing"} (${err.message}).` : err.message,
  );
}

/**
 * The rate and its 95% Wilson interval on a scale shared by every row (0 to `top`): a line from
 * low to high, a dot at the rate.
 */
function intervalChart(arm, top) {
  const width = 200;
  const x = (value) => 4 + (Math.min(value, top) / top) * (width - 8);
  const { low, high } = arm.conversion_ci95;
  const label = `${percent(arm.conversion_rate)}, 95% interval ${percent(low)} to ${percent(high)}`;
  const chart = svg(
    "svg",
    {
      class: "interval",
      width,
      height: 18,
      viewBox: `0 0 ${width} 18`,
      role: "img",
      "aria-label": label,
      "data-low": low,
      "data-high": high,
    },
    svg("title", null, label),
    svg("line", { class: "axis", x1: 4, x2: width - 4, y1: 15, y2: 15 }),
    svg("line", { class: "range", x1: x(low), x2: x(high), y1: 9, y2: 9 }),
  );
  if (arm.conversion_rate !== null)
    chart.append(svg("circle", { class: "rate", cx: x(arm.conversion_rate), cy: 9, r: 3.5 }));
  return chart;
}

function outcomes(arm) {
  const parts = Object.entries(arm.outcomes).map(([kind, n]) => `${kind} ${n}`);
  return parts.length ? parts.join(", ") : "none";
}

function armsTable(report) {
  const arms = [
    ...report.variants.map((arm) => ({
      ...arm,
      key: arm.variant ?? "all",
      label: arm.variant ?? "all leads",
    })),
    ...(report.holdout ? [{ ...report.holdout, key: "holdout", label: "holdout" }] : []),
  ];
  if (arms.every((arm) => arm.enrolled === 0)) {
    return h(
      "p",
      { class: "muted", id: "arms-empty" },
      "No lead was enrolled in this sequence in the range.",
    );
  }
  // A scale a little past the widest interval, so small rates are not squeezed into a corner.
  const top = Math.min(1, Math.max(0.05, ...arms.map((arm) => arm.conversion_ci95.high)) * 1.1);
  const columns = [
    ["arm", (a) => a.label],
    ["enrolled", (a) => a.enrolled],
    ["delivered", (a) => a.followups_delivered],
    ["outcomes", outcomes],
    ["converted", (a) => a.converted],
    ["rate", (a) => percent(a.conversion_rate)],
    [
      `95% interval (0 to ${percent(top)})`,
      (a) =>
        h(
          "span",
          { class: "nowrap" },
          intervalChart(a, top),
          ` ${percent(a.conversion_ci95.low)}–${percent(a.conversion_ci95.high)}`,
        ),
    ],
    [
      "vs holdout",
      (a) =>
        a.vs_holdout
          ? `${a.vs_holdout.difference >= 0 ? "+" : ""}${(a.vs_holdout.difference * 100).toFixed(1)} points, p = ${a.vs_holdout.p_value.toPrecision(2)}`
          : "",
    ],
    ["in attribution window", (a) => a.inside_attribution_window],
  ];
  const tableElement = table(columns, arms, { id: "arms" });
  tableElement.querySelectorAll("tbody tr").forEach((row, i) => {
    row.setAttribute("data-arm", arms[i].key);
  });
  return tableElement;
}

function stepsTable(steps) {
  if (steps.length === 0)
    return h(
      "p",
      { class: "muted", id: "steps-empty" },
      "No step was delivered, failed or suppressed in the range.",
    );
  return table(
    [
      ["step", (s) => s.step],
      ["channel", (s) => s.channel],
      ["variant", (s) => s.variant ?? ""],
      ["delivered", (s) => s.delivered],
      ["failed", (s) => s.failed],
      ["suppressed", (s) => s.suppressed],
      ["converted after", (s) => s.converted_after],
    ],
    steps,
    { id: "steps-report" },
  );
}

/** The sequence picker and, for the chosen one, its arms and its steps. */
function reportsSection(chosen) {
  const section = h("section", { id: "reports", "aria-labelledby": "reports-title" });
  const results = h("div", { id: "report" });
  const picker = /** @type {HTMLSelectElement} */ (h("select", { id: "report-sequence", name: "sequence" }));
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: submitted(() => {
        location.hash = `#/experiments/${encodeURIComponent(picker.value)}`;
      }),
    },
    h("div", null, h("label", { for: "report-sequence" }, "Sequence"), picker),
    h("button", { type: "submit" }, "Show"),
  );
  section.append(h("h2", { id: "reports-title" }, "Conversion by variant and holdout"), form, results);

  const load = async (name) => {
    replace(results, h("p", { class: "muted" }, `Reading the report of ${name}…`));
    const path = `/v1/reports/sequences/${encodeURIComponent(name)}`;
    try {
      const [{ data: report }, { data: steps }] = await Promise.all([
        get(path),
        get(`/v1/reports/steps${query({ sequence: name })}`),
      ]);
      replace(
        results,
        h(
          "p",
          { class: "muted", id: "report-range" },
          `${report.since} to ${report.until} (UTC days the leads were created); a booking within ${report.attribution_window_days} days of a lead's creation is a conversion.`,
        ),
        armsTable(report),
        h("h3", null, "Steps"),
        stepsTable(steps.steps),
      );
    } catch (err) {
      replace(results, failure(path, err));
    }
  };

  get("/v1/sequences").then(
    ({ data }) => {
      const names = [...new Set([...data.sequences.map((s) => s.name), BUILT_IN])];
      const current = chosen && names.includes(chosen) ? chosen : (chosen ?? names[0]);
      if (!names.includes(current)) names.unshift(current);
      replace(picker, ...names.map((name) => h("option", { value: name, selected: name === current }, name)));
      void load(current);
    },
    (err) => replace(results, failure("/v1/sequences", err)),
  );
  return section;
}

const versionName = (version) => version ?? "the committed model";

/** The model in use, its evaluation and history, and the way back. */
function modelSection() {
  const section = h("section", { id: "model", "aria-labelledby": "model-title" });
  const body = h("div");
  const confirm = h("div", { id: "rollback-confirm" });
  const status = h("p", { role: "status", id: "rollback-status", tabindex: "-1" });
  section.append(
    h("h2", { id: "model-title" }, "Model"),
    body,
    h(
      "p",
      { class: "hint", id: "promote-hint" },
      "A model is promoted only by retraining from the outcomes, past its guard (AUC at least 0.65 and at most 0.01 below the current model on the newest leads): run ",
      h("code", null, PROMOTE_COMMAND),
      ". This page can roll back, not promote.",
    ),
    confirm,
    status,
  );

  const rollBackButton = h("button", { type: "button", id: "rollback", onclick: () => ask() }, "Roll back");
  let model = null;

  const ask = () => {
    const from = versionName(model.current);
    const to = model.previous.length
      ? versionName(model.previous.at(-1))
      : "nothing: no version was current before it";
    confirmation(confirm, {
      prefix: "rollback",
      question: `Roll the model back from ${from} to ${to}? Every lead-intake copy scores with it within moments.`,
      yes: "Roll back",
      onYes: () => void rollBack(),
      returnTo: rollBackButton,
    });
  };

  const rollBack = async () => {
    replace(confirm);
    try {
      const { data } = await call("POST", "/ops/model/rollback");
      replace(status, `Rolled back from ${versionName(data.from)} to ${versionName(data.to)}.`);
    } catch (err) {
      replace(
        status,
        err instanceof ApiError && err.status === 403
          ? "Not rolled back: your tenant may not roll the model back (only the tenants of MODEL_OPERATOR_TENANTS may)."
          : `Not rolled back: ${err.message}`,
      );
    }
    await load();
    status.focus();
  };

  const load = async () => {
    try {
      ({ data: model } = await get("/ops/model"));
    } catch (err) {
      replace(body, failure("/ops/model", err));
      return;
    }
    const evaluation = model.evaluation;
    const details = [
      ["current", h("span", { id: "model-current" }, versionName(model.current))],
      ["serving (this copy)", model.serving],
      [
        "AUC",
        h("span", { id: "model-auc" }, evaluation ? evaluation.auc.toFixed(3) : "– (not evaluated here)"),
      ],
      ["Brier", evaluation ? evaluation.brier.toFixed(3) : "–"],
      ...(evaluation
        ? [
            ["base rate", percent(evaluation.base_rate)],
            ["leads", `${evaluation.n_train} trained on, ${evaluation.n_test} tested on`],
          ]
        : []),
      ...(model.window
        ? [
            [
              "test window",
              h("span", null, time(model.window.test_from), " to ", time(model.window.test_until)),
            ],
          ]
        : []),
      ["before it", model.previous.length ? model.previous.map(versionName).join(", ") : "none"],
    ];
    replace(
      body,
      h(
        "dl",
        { class: "details", id: "model-details" },
        ...details.flatMap(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
      ),
      h("h3", null, "History"),
      model.log.length
        ? table(
            [
              ["at", (e) => time(e.at)],
              ["action", (e) => (e.action === "promoted" ? "promoted" : "rolled back")],
              ["version", (e) => versionName(e.version)],
            ],
            [...model.log].reverse(),
            { id: "model-history" },
          )
        : h("p", { class: "muted", id: "model-history-empty" }, "Nothing was promoted or rolled back yet."),
      h("p", null, rollBackButton),
    );
  };

  void load();
  return section;
}

export function render(root, [sequence] = []) {
  root.append(h("h1", null, "Experiments"), reportsSection(sequence), modelSection());
}
