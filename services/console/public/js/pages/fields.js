import { h, replace, submitted } from "../dom.js";

/**
 * Shows an API validation error's details beside the fields they name: each field has an error
 * element under `data-error-for="<path>"`; a detail goes to the longest path that starts its
 * own (`steps.0.delay` to the delay of step 1), else to the form's `(root)` element.
 */
export function showFieldErrors(form, details, fallbackMessage) {
  for (const element of form.querySelectorAll("[data-error-for]")) replace(element);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const targets = [...form.querySelectorAll("[data-error-for]")];
  const list =
    details && details.length > 0
      ? details
      : fallbackMessage
        ? [{ path: "(root)", message: fallbackMessage }]
        : [];
  for (const detail of list) {
    const path = detail.path;
    const target =
      targets
        .filter((t) => {
          const own = t.getAttribute("data-error-for");
          return own === path || path.startsWith(`${own}.`);
        })
        .sort(
          (a, b) => b.getAttribute("data-error-for").length - a.getAttribute("data-error-for").length,
        )[0] ?? targets.find((t) => t.getAttribute("data-error-for") === "(root)");
    if (!target) continue;
    const own = target.getAttribute("data-error-for");
    target.append(h("span", null, own === path ? detail.message : `${path}: ${detail.message}`), " ");
    const input = form.querySelector(`[aria-describedby="${target.id}"]`);
    input?.setAttribute("aria-invalid", "true");
  }
}

let fieldCount = 0;

/** A labelled field with its error element, wired with aria-describedby. */
export function field(label, path, control) {
  const errorId = `error-${++fieldCount}`;
  const id = control.id || `field-${fieldCount}`;
  control.id = id;
  control.setAttribute("aria-describedby", errorId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    h("div", { class: "field-error", id: errorId, "data-error-for": path, role: "alert" }),
  );
}

/**
 * A form of filters (`[name, label, input attributes]`) and a Filter button that calls `apply`;
 * ids are `<prefix>-<name>`.
 */
export function filterForm(prefix, filters, apply) {
  return h(
    "form",
    { class: "inline", onsubmit: submitted(() => apply()) },
    ...filters.map(([name, label, attrs = {}]) =>
      h(
        "div",
        null,
        h("label", { for: `${prefix}-${name}` }, label),
        h("input", { id: `${prefix}-${name}`, name, ...attrs }),
      ),
    ),
    h("button", { type: "submit" }, "Filter"),
  );
}
