import { get } from "../api.js";
import { h, replace, submitted, table } from "../dom.js";

/**
 * The listing of a tenant's named records (sequences, templates): a form to open a new one by
 * name, and a table of those stored, each name a link to its page.
 * @param {HTMLElement} root
 * @param {{ title: string, resource: string, one: string, columns: [string, (r: any) => unknown][] }} options
 */
export function recordList(root, { title, resource, one, columns }) {
  const body = h("div");
  const id = `new-${one}-name`;
  const name = /** @type {HTMLInputElement} */ (
    h("input", { id, pattern: "[a-z0-9_-]{1,64}", required: true })
  );
  const link = (record) => h("a", { href: `#/${resource}/${encodeURIComponent(record.name)}` }, record.name);
  root.append(
    h("h1", null, title),
    h(
      "form",
      {
        class: "inline",
        onsubmit: submitted(() => {
          location.hash = `#/${resource}/${encodeURIComponent(name.value)}`;
        }),
      },
      h("div", null, h("label", { for: id }, `New ${one} name`), name),
      h("button", { type: "submit" }, "Create"),
    ),
    body,
  );
  get(`/v1/${resource}`).then(
    ({ data }) => replace(body, table([["name", link], ...columns], data[resource], { id: resource })),
    (err) => replace(body, h("p", { class: "error", role: "alert" }, err.message)),
  );
}
