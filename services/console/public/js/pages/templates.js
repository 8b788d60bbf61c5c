import { ApiError, call, get } from "../api.js";
import { h, replace } from "../dom.js";
import { field, showFieldErrors } from "./fields.js";
import { recordList } from "./records.js";

function list(root) {
  recordList(root, {
    title: "Templates",
    resource: "templates",
    one: "template",
    columns: [
      ["channel", (t) => t.channel],
      ["revision", (t) => t.revision],
    ],
  });
}

function edit(root, name) {
  const status = h("p", { role: "status", id: "template-status" });
  const text = h("textarea", { id: "template-body" });
  const form = h(
    "form",
    { id: "template-form" },
    h("div", { class: "field-error", "data-error-for": "(root)", role: "alert" }),
    field("Template (JSON: channel, body, and subject or html for e-mail)", "body", text),
    h("button", { type: "submit" }, "Save"),
  );
  const previewResult = h("div", { id: "preview" });
  const leadInput = h("input", { id: "preview-lead", required: true, autocomplete: "off" });
  const preview = h(
    "form",
    { class: "inline", id: "preview-form" },
    h("div", null, h("label", { for: "preview-lead" }, "Preview for lead id"), leadInput),
    h("button", { type: "submit" }, "Preview"),
  );
  root.append(
    h("h1", null, `Template ${name}`),
    h("p", null, h("a", { href: "#/templates" }, "All templates")),
    form,
    status,
    h("h2", null, "Preview"),
    preview,
    previewResult,
  );
  let revision = null;
  const fields = (data) => {
    const { name: _n, revision: _r, updated_at: _u, ...own } = data;
    return own;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(/** @type {HTMLTextAreaElement} */ (text).value);
    } catch (err) {
      showFieldErrors(form, [{ path: "body", message: `not JSON: ${err.message}` }]);
      return;
    }
    try {
      const saved = await call("PUT", `/v1/templates/${encodeURIComponent(name)}`, {
        body,
        headers: revision === null ? {} : { "if-match": String(revision) },
      });
      revision = saved.data.revision;
      showFieldErrors(form, []);
      replace(status, h("span", { class: "ok" }, `Saved (revision ${revision}).`));
    } catch (err) {
      // The template's own fields (channel, body, subject, html) are in the one JSON field.
      const details =
        err instanceof ApiError
          ? (err.details ?? []).map((d) => ({
              path: d.path === "(root)" ? "(root)" : `body.${d.path}`,
              message: d.message,
            }))
          : [];
      showFieldErrors(form, details, err.message);
      replace(status, h("span", { class: "error" }, "Not saved."));
    }
  });
  preview.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { data } = await call("POST", `/v1/templates/${encodeURIComponent(name)}/preview`, {
        body: { lead_id: /** @type {HTMLInputElement} */ (leadInput).value.trim() },
      });
      const message = data.message ?? data;
      replace(
        previewResult,
        message.subject !== undefined ? h("p", null, h("strong", null, "Subject: "), message.subject) : null,
        h("pre", { id: "preview-body" }, message.body ?? JSON.stringify(message, null, 2)),
      );
    } catch (err) {
      replace(previewResult, h("p", { class: "error", role: "alert" }, err.message));
    }
  });
  get(`/v1/templates/${encodeURIComponent(name)}`).then(
    ({ data }) => {
      revision = data.revision;
      /** @type {HTMLTextAreaElement} */ (text).value = JSON.stringify(fields(data), null, 2);
    },
    (err) => {
      if (err instanceof ApiError && err.status === 404)
        /** @type {HTMLTextAreaElement} */ (text).value = JSON.stringify(
          { channel: "sms", body: "Hi {{ lead.first_name }}" },
          null,
          2,
        );
      else replace(status, h("span", { class: "error" }, err.message));
    },
  );
}

export function render(root, [name]) {
  if (name) edit(root, name);
  else list(root);
}
