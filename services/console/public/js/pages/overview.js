import { get } from "../api.js";
import { h, replace, table, time } from "../dom.js";

/** Refreshed this often while the page is open. */
const REFRESH_MS = 5000;

const card = (label, value, id) =>
  h(
    "div",
    { class: "card", "data-card": id },
    h("div", { class: "value" }, value),
    h("div", { class: "label" }, label),
  );

async function load(body) {
  const [summary, queue, lag] = await Promise.allSettled([
    get("/ops/summary"),
    get("/ops/followup/queue"),
    get("/console/lag"),
  ]);
  const parts = [];
  if (summary.status === "fulfilled") {
    const s = summary.value.data;
    parts.push(
      h(
        "div",
        { class: "cards" },
        card("follow-ups pending", s.pending, "pending"),
        card("due in the next hour", s.due_next_hour, "due-next-hour"),
        card("dead letters", s.dead_letters, "dead-letters"),
      ),
      h("h2", null, "Last 24 hours by channel"),
      h(
        "p",
        { class: "muted" },
        "since ",
        time(s.results.since),
        s.results.complete ? "" : " (more results than counted)",
      ),
      table(
        [
          ["channel", (r) => r[0]],
          ["delivered", (r) => r[1].delivered],
          ["retried", (r) => r[1].retried],
          ["failed", (r) => r[1].failed],
          ["suppressed", (r) => r[1].suppressed],
        ],
        Object.entries(s.results.by_channel),
        { id: "by-channel" },
      ),
    );
  } else parts.push(h("p", { class: "error" }, `summary: ${summary.reason.message}`));
  if (queue.status === "fulfilled") {
    const q = queue.value.data;
    parts.push(
      h("h2", null, "Queue and outbox (whole engine)"),
      h(
        "div",
        { class: "cards" },
        card("timer stream (timers and fired markers)", q.jobs.scheduled, "scheduled"),
        card("replays queued", q.jobs.queued, "queued"),
        card("dead letters (all tenants)", q.jobs.dead, "dead-all"),
        q.outbox
          ? card(
              `outbox (${q.outbox.draining ? "draining" : "idle"}, capacity ${q.outbox.capacity})`,
              q.outbox.queued,
              "outbox",
            )
          : card("outbox", "none", "outbox"),
      ),
      q.enabled ? null : h("p", { class: "notice" }, `Follow-ups are not running: ${q.reason ?? "disabled"}`),
    );
  }
  if (lag.status === "fulfilled") {
    const l = lag.value.data;
    parts.push(
      h("h2", null, "Consumer lag"),
      l.sources === 0
        ? h("p", { class: "muted" }, "No service metrics configured (CONSOLE_METRICS_URLS).")
        : table(
            [
              ["consumer", (r) => r.consumer],
              ["pending", (r) => r.pending],
              ["ack pending", (r) => r.ack_pending],
            ],
            l.consumers,
            { id: "consumer-lag" },
          ),
      l.unreachable > 0
        ? h("p", { class: "error" }, `${l.unreachable} metrics endpoint(s) did not answer`)
        : null,
    );
  }
  parts.push(
    h(
      "p",
      { class: "hint" },
      "Updated ",
      time(new Date().toISOString()),
      `; refreshed every ${REFRESH_MS / 1000} s.`,
    ),
  );
  replace(body, ...parts);
}

export function render(root) {
  const body = h("div", { "aria-live": "polite" });
  root.append(h("h1", null, "Overview"), body);
  void load(body);
  const timer = setInterval(() => void load(body), REFRESH_MS);
  return () => clearInterval(timer);
}
