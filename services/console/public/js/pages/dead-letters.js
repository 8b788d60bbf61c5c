import { call, get, query } from "../api.js";
import { confirmation, h, leadLink, replace, time } from "../dom.js";
import { filterForm } from "./fields.js";

const keyOf = (item) => `${item.event.data.lead_id}/${item.event.data.step}`;

/** Client-side filters over what the API lists (it filters by lead and step itself). */
function matches(item, filter) {
  const data = item.event.data;
  if (filter.channel && data.channel !== filter.channel) return false;
  // The dead letter keeps the due follow-up as it was, with its sequence (none: the built-in rule).
  if (filter.sequence && (data.due?.sequence ?? "default") !== filter.sequence) return false;
  if (
    filter.error &&
    !`${data.last_error} ${data.last_status_code ?? ""}`.toLowerCase().includes(filter.error.toLowerCase())
  )
    return false;
  if (filter.since && item.received_at < new Date(filter.since).toISOString()) return false;
  return true;
}

export function render(root) {
  const selected = new Set();
  let shown = [];
  const list = h("div");
  const status = h("p", { role: "status", id: "replay-status" });
  const confirm = h("div", { id: "replay-confirm" });
  const replayButton = h(
    "button",
    { type: "button", id: "replay-selected", disabled: true, onclick: () => ask() },
    "Replay selected",
  );

  const form = filterForm(
    "dl",
    [
      ["lead_id", "Lead"],
      ["sequence", "Sequence"],
      ["channel", "Channel"],
      ["error", "Error contains"],
      ["since", "Dead since", { type: "datetime-local" }],
    ],
    () => void load(),
  );

  const updateButton = () => {
    replace(replayButton, `Replay selected (${selected.size})`);
    /** @type {HTMLButtonElement} */ (replayButton).disabled = selected.size === 0;
  };

  const draw = () => {
    const all = h("input", {
      type: "checkbox",
      id: "select-all",
      "aria-label": "Select every dead letter shown",
      checked: shown.length > 0 && shown.every((item) => selected.has(keyOf(item))),
      onchange: (event) => {
        for (const item of shown) {
          if (event.target.checked) selected.add(keyOf(item));
          else selected.delete(keyOf(item));
        }
        draw();
      },
    });
    const rows = shown.map((item) => {
      const data = item.event.data;
      const key = keyOf(item);
      return h(
        "tr",
        { "data-lead": data.lead_id, "data-step": data.step },
        h(
          "td",
          null,
          h("input", {
            type: "checkbox",
            "aria-label": `Select lead ${data.lead_id} step ${data.step}`,
            checked: selected.has(key),
            onchange: (event) => {
              if (event.target.checked) selected.add(key);
              else selected.delete(key);
              updateButton();
            },
          }),
        ),
        h("td", null, leadLink(data.lead_id)),
        h("td", null, data.step),
        h("td", null, data.channel),
        h("td", null, data.reason),
        h("td", null, data.attempts),
        h("td", null, `${data.last_status_code ?? ""} ${data.last_error}`),
        h("td", null, time(item.received_at)),
      );
    });
    replace(
      list,
      h("p", { class: "muted" }, `${shown.length} dead letter(s)`),
      h(
        "table",
        { id: "dead-letters" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, all),
            ...["lead", "step", "channel", "reason", "attempts", "last error", "dead since"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", null, ...rows),
      ),
    );
    updateButton();
  };

  const load = async () => {
    const filter = Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ (form)));
    try {
      const { data } = await get(`/ops/dead-letters${query({ lead_id: filter.lead_id, limit: 1000 })}`);
      shown = data.dead_letters.filter((item) => matches(item, filter));
      const visible = new Set(shown.map(keyOf));
      for (const key of [...selected]) if (!visible.has(key)) selected.delete(key);
      draw();
    } catch (err) {
      replace(list, h("p", { class: "error", role: "alert" }, err.message));
    }
  };

  // The count is shown, and confirmed, before anything is replayed.
  const ask = () => {
    const count = selected.size;
    confirmation(confirm, {
      prefix: "replay",
      question: `Replay ${count} dead letter${count === 1 ? "" : "s"}? Each is delivered again with its idempotency key.`,
      yes: `Replay ${count}`,
      onYes: () => void replay(),
      returnTo: replayButton,
    });
  };

  const replay = async () => {
    const keys = [...selected];
    replace(confirm);
    let replayed = 0;
    const failures = [];
    for (const key of keys) {
      const [lead_id, step] = key.split("/");
      try {
        const { data } = await call("POST", "/ops/dead-letters/replay", {
          body: { lead_id, step: Number(step) },
        });
        replayed += data.replayed;
        selected.delete(key);
      } catch (err) {
        failures.push(`${key}: ${err.message}`);
      }
    }
    replace(
      status,
      `Replayed ${replayed} dead letter${replayed === 1 ? "" : "s"}.`,
      failures.length ? ` Failed: ${failures.join("; ")}` : "",
    );
    await load();
    status.focus();
  };

  status.setAttribute("tabindex", "-1");
  root.append(h("h1", null, "Dead letters"), form, h("p", null, replayButton), confirm, status, list);
  void load();
}
