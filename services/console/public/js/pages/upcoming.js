import { get, query } from "../api.js";
import { h, leadLink, replace, submitted, table, time } from "../dom.js";

const REFRESH_MS = 10_000;

export function render(root) {
  const result = h("div", { "aria-live": "polite" });
  const field = (name, label) =>
    h(
      "div",
      null,
      h("label", { for: `upcoming-${name}` }, label),
      h("input", { id: `upcoming-${name}`, name }),
    );
  const form = h(
    "form",
    { class: "inline", onsubmit: submitted(() => void load()) },
    field("lead_id", "Lead"),
    field("channel", "Channel"),
    field("sequence", "Sequence"),
    h(
      "div",
      null,
      h("label", { for: "upcoming-limit" }, "Show"),
      h("input", { id: "upcoming-limit", name: "limit", type: "number", min: 1, max: 500, value: 50 }),
    ),
    h("button", { type: "submit" }, "Filter"),
  );
  const load = async () => {
    const values = Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ (form)));
    try {
      const { data } = await get(`/ops/followups/upcoming${query(values)}`);
      replace(
        result,
        h("p", { class: "muted" }, `${data.count} shown of ${data.pending} waiting`),
        table(
          [
            ["due", (f) => time(f.due_at)],
            ["lead", (f) => leadLink(f.lead_id)],
            ["sequence", (f) => f.sequence ?? "(default)"],
            ["step", (f) => f.step],
            ["channel", (f) => f.channel ?? "(deployment's)"],
          ],
          data.followups,
          { id: "upcoming" },
        ),
      );
    } catch (err) {
      replace(result, h("p", { class: "error", role: "alert" }, err.message));
    }
  };
  root.append(h("h1", null, "Upcoming follow-ups"), form, result);
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  return () => clearInterval(timer);
}
