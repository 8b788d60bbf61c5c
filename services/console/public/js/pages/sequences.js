import { ApiError, call, get } from "../api.js";
import { h, replace } from "../dom.js";
import { field, showFieldErrors } from "./fields.js";
import { recordList } from "./records.js";

const CHANNELS = ["hook", "sms", "email", "slack"];

function list(root) {
  recordList(root, {
    title: "Sequences",
    resource: "sequences",
    one: "sequence",
    columns: [
      ["enabled", (s) => (s.enabled ? "yes" : "no")],
      ["priority", (s) => s.priority],
      ["steps", (s) => s.steps.map((step) => `${step.delay} ${step.channel}`).join(", ")],
      ["revision", (s) => s.revision],
    ],
  });
}

function stepRow(step, index) {
  const delay = h("input", { name: "delay", value: step.delay ?? "", id: `step-${index}-delay` });
  const channel = h(
    "select",
    { name: "channel", id: `step-${index}-channel` },
    ...CHANNELS.map((c) => h("option", { value: c, selected: c === (step.channel ?? "hook") }, c)),
  );
  const template = h("input", { name: "template", value: step.template ?? "", id: `step-${index}-template` });
  return h(
    "fieldset",
    { class: "step", "data-step": index },
    h("legend", null, `Step ${index + 1}`),
    field("Delay", `steps.${index}.delay`, delay),
    field("Channel", `steps.${index}.channel`, channel),
    field("Template", `steps.${index}.template`, template),
  );
}

function edit(root, name) {
  const status = h("p", { role: "status", id: "save-status" });
  const holder = h("div");
  root.append(
    h("h1", null, `Sequence ${name}`),
    h("p", null, h("a", { href: "#/sequences" }, "All sequences")),
    holder,
    status,
  );
  let revision = null;

  const draw = (sequence) => {
    const enabled = h("input", { type: "checkbox", id: "seq-enabled", checked: sequence.enabled ?? true });
    const priority = h("input", { type: "number", id: "seq-priority", value: sequence.priority ?? 0 });
    const steps = h(
      "div",
      { id: "steps" },
      ...(sequence.steps ?? [{ delay: "1h", channel: "hook" }]).map(stepRow),
    );
    const { match, send_window, stop_on } = sequence;
    const rest = h("textarea", { id: "seq-rest" }, JSON.stringify({ match, send_window, stop_on }, null, 2));
    const form = h(
      "form",
      { id: "sequence-form", novalidate: true },
      h("div", { class: "field-error", "data-error-for": "(root)", role: "alert", id: "seq-root-error" }),
      field("Enabled", "enabled", enabled),
      field("Priority", "priority", priority),
      steps,
      h(
        "p",
        null,
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: () => steps.append(stepRow({ delay: "", channel: "hook" }, steps.children.length)),
          },
          "Add step",
        ),
      ),
      field("Matching, send window and stop outcomes (JSON)", "match", rest),
      h("button", { type: "submit", id: "save-sequence" }, "Save"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      replace(status);
      let extra;
      try {
        extra = JSON.parse(/** @type {HTMLTextAreaElement} */ (rest).value || "{}");
      } catch (err) {
        showFieldErrors(form, [{ path: "match", message: `not JSON: ${err.message}` }]);
        return;
      }
      const body = {
        enabled: /** @type {HTMLInputElement} */ (enabled).checked,
        priority: Number(/** @type {HTMLInputElement} */ (priority).value),
        steps: [...steps.querySelectorAll("fieldset.step")].map((set) => {
          const value = (n) =>
            /** @type {HTMLInputElement} */ (set.querySelector(`[name=${n}]`)).value.trim();
          return {
            delay: value("delay"),
            channel: value("channel"),
            ...(value("template") ? { template: value("template") } : {}),
          };
        }),
        ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined && v !== null)),
      };
      try {
        const saved = await call("PUT", `/v1/sequences/${encodeURIComponent(name)}`, {
          body,
          headers: revision === null ? {} : { "if-match": String(revision) },
        });
        revision = saved.data.revision;
        showFieldErrors(form, [], "");
        replace(form.querySelector("[data-error-for='(root)']"));
        replace(status, h("span", { class: "ok" }, `Saved (revision ${revision}).`));
      } catch (err) {
        if (err instanceof ApiError) showFieldErrors(form, err.details, err.message);
        replace(status, h("span", { class: "error" }, "Not saved."));
      }
    });
    replace(holder, form);
  };

  get(`/v1/sequences/${encodeURIComponent(name)}`).then(
    ({ data }) => {
      revision = data.revision;
      draw(data);
    },
    (err) => {
      if (err instanceof ApiError && err.status === 404) draw({});
      else replace(holder, h("p", { class: "error", role: "alert" }, err.message));
    },
  );
}

export function render(root, [name]) {
  if (name) edit(root, name);
  else list(root);
}
