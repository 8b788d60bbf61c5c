import { ApiError, get } from "../api.js";
import { h, replace, table, time } from "../dom.js";
import { followLead } from "../live.js";

function details(lead) {
  const rows = Object.entries(lead).filter(([, value]) => value !== undefined && value !== null);
  return h(
    "dl",
    { class: "details", id: "lead-details" },
    ...rows.flatMap(([name, value]) => [
      h("dt", null, name),
      h("dd", { "data-field": name }, typeof value === "object" ? JSON.stringify(value) : String(value)),
    ]),
  );
}

function view(data) {
  return [
    h("h2", null, "Details"),
    details(data.lead),
    h(
      "p",
      null,
      "Qualified for follow-ups: ",
      data.qualified === null ? "not yet decided" : data.qualified ? "yes" : "no",
    ),
    h("h2", null, "Follow-ups"),
    table(
      [
        ["step", (f) => f.step],
        ["due", (f) => time(f.due_at)],
        ["status", (f) => h("span", { class: `status-${f.status}`, "data-status": f.status }, f.status)],
        ["attempts", (f) => f.attempts],
        ["last error", (f) => f.last_error ?? ""],
        ["delivered", (f) => time(f.delivered_at)],
      ],
      data.followups,
      { id: "followups" },
    ),
    h("h2", null, "Timeline"),
    h(
      "ol",
      { id: "timeline" },
      ...data.timeline.map((entry) =>
        h(
          "li",
          { "data-event": entry.event },
          time(entry.at),
          " ",
          h("strong", null, entry.event),
          entry.step !== undefined ? ` step ${entry.step}` : "",
          entry.detail ? h("span", { class: "muted" }, ` ${JSON.stringify(entry.detail)}`) : "",
        ),
      ),
    ),
  ];
}

export function render(root, [leadId]) {
  const result = h("div", { id: "lead-view" });
  const state = h("span", { class: "muted", id: "live-state" });
  const input = h("input", {
    id: "lead-id",
    name: "lead_id",
    value: leadId ?? "",
    required: true,
    autocomplete: "off",
  });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        location.hash = `#/lead/${encodeURIComponent(/** @type {HTMLInputElement} */ (input).value.trim())}`;
      },
    },
    h("div", null, h("label", { for: "lead-id" }, "Lead id"), input),
    h("button", { type: "submit" }, "Look up"),
  );
  root.append(h("h1", null, "Lead"), form, state, result);
  if (!leadId) return;

  let stream;
  let latest = 0;
  const load = async () => {
    const asked = ++latest;
    try {
      const { data } = await get(`/v1/lead/${encodeURIComponent(leadId)}`);
      // A slower earlier read must not replace what a later one showed.
      if (asked === latest) replace(result, ...view(data));
      return true;
    } catch (err) {
      const message = err instanceof ApiError && err.status === 404 ? "Lead not found." : err.message;
      replace(result, h("p", { class: "error", role: "alert", id: "lead-error" }, message));
      return false;
    }
  };
  void load().then((found) => {
    if (!found) return;
    // Every event of the lead (and the moment the stream is live) reads the lead again.
    stream = followLead(
      leadId,
      () => void load(),
      (text) => replace(state, `Live: ${text}`),
    );
  });
  return () => stream?.close();
}
