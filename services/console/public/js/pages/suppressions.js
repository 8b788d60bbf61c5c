import { call, get, query } from "../api.js";
import { h, replace, submitted, table, time } from "../dom.js";
import { field, showFieldErrors } from "./fields.js";

const CHANNELS = ["sms", "email"];

export function render(root) {
  const body = h("div");
  const status = h("p", { role: "status", id: "suppression-status" });
  const channel = () =>
    h(
      "select",
      { name: "channel" },
      h("option", { value: "" }, "any"),
      ...CHANNELS.map((c) => h("option", { value: c }, c)),
    );
  const searchChannel = channel();
  searchChannel.id = "search-channel";
  const searchAddress = h("input", { id: "search-address", name: "address", autocomplete: "off" });
  const search = h(
    "form",
    { class: "inline", id: "suppression-search" },
    h("div", { class: "field-error", "data-error-for": "(root)", role: "alert" }),
    field("Channel", "channel", searchChannel),
    field("Address", "address", searchAddress),
    h("button", { type: "submit" }, "Search"),
  );
  const addChannel = h(
    "select",
    { name: "channel", id: "add-channel" },
    ...CHANNELS.map((c) => h("option", { value: c }, c)),
  );
  const addAddress = h("input", { id: "add-address", name: "address", autocomplete: "off" });
  const add = h(
    "form",
    { class: "inline", id: "suppression-add" },
    h("div", { class: "field-error", "data-error-for": "(root)", role: "alert" }),
    field("Channel", "channel", addChannel),
    field("Address", "address", addAddress),
    h("button", { type: "submit" }, "Suppress"),
  );

  const load = async () => {
    const values = Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ (search)));
    try {
      const { data } = await get(`/v1/suppressions${query(values)}`);
      showFieldErrors(search, []);
      replace(
        body,
        h("p", { class: "muted" }, `${data.count} suppression(s)${data.more ? " (more not shown)" : ""}`),
        table(
          [
            ["channel", (s) => s.channel],
            ["address", (s) => s.address ?? "(sealed, no key)"],
            ["reason", (s) => s.reason],
            ["source", (s) => s.source],
            ["since", (s) => time(s.created_at)],
            [
              "",
              (s) =>
                h(
                  "button",
                  {
                    type: "button",
                    class: "secondary",
                    "aria-label": `Remove suppression of ${s.address ?? s.id}`,
                    onclick: async () => {
                      try {
                        await call("DELETE", `/v1/suppressions/${encodeURIComponent(s.id)}`);
                        replace(status, `Removed ${s.address ?? s.id}.`);
                      } catch (err) {
                        replace(status, h("span", { class: "error" }, err.message));
                      }
                      await load();
                    },
                  },
                  "Remove",
                ),
            ],
          ],
          data.suppressions,
          { id: "suppressions" },
        ),
      );
    } catch (err) {
      showFieldErrors(search, err.details, err.message);
    }
  };
  search.addEventListener(
    "submit",
    submitted(() => void load()),
  );
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("POST", "/v1/suppressions", {
        body: {
          channel: /** @type {HTMLSelectElement} */ (addChannel).value,
          address: /** @type {HTMLInputElement} */ (addAddress).value,
        },
      });
      showFieldErrors(add, []);
      replace(status, "Suppressed.");
      await load();
    } catch (err) {
      showFieldErrors(add, err.details, err.message);
    }
  });
  root.append(
    h("h1", null, "Suppressions"),
    h("h2", null, "Search"),
    search,
    h("h2", null, "Add"),
    add,
    status,
    body,
  );
  void load();
}
