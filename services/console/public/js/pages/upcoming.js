import { get, query } from "../api.js";
import { h, leadLink, replace, table, time } from "../dom.js";
import { filterForm } from "./fields.js";

const REFRESH_MS = 10_000;

export function render(root) {
  const result = h("div", { "aria-live": "polite" });
  const form = filterForm(
    "upcoming",
    [
      ["lead_id", "Lead"],
      ["channel", "Channel"],
      ["sequence", "Sequence"],
      ["limit", "Show", { type: "number", min: 1, max: 500, value: 50 }],
    ],
    () => void load(),
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
