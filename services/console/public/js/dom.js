/**
 * Builds elements without HTML parsing: strings and numbers become text nodes, so data from the
 * API (a lead's name among it) is always shown as text, never run or parsed as markup.
 */

/**
 * @param {string} tag
 * @param {Record<string, unknown> | null} [attrs] attributes; `on<event>` functions are listeners
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    } else if (name === "value" && "value" in element) {
      /** @type {HTMLInputElement} */ (element).value = String(value);
    } else if (name === "checked" && "checked" in element) {
      /** @type {HTMLInputElement} */ (element).checked = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children (text for strings and numbers; nothing for null, undefined and false). */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** A table of `rows` with `columns` (heading, cell builder). */
export function table(columns, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", null, h("tr", null, ...columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
    h(
      "tbody",
      null,
      ...rows.map((row) => h("tr", null, ...columns.map(([, cell]) => h("td", null, cell(row))))),
    ),
  );
}

/** A time as the browser's locale shows it, with the ISO text as its title. */
export function time(iso) {
  if (!iso) return "";
  return h("time", { datetime: iso, title: iso }, new Date(iso).toLocaleString());
}

/** A link to a lead's page. */
export function leadLink(leadId) {
  return h("a", { href: `#/lead/${encodeURIComponent(leadId)}` }, leadId);
}

/** A submit listener that keeps the page (no navigation) and runs `action`. */
export function submitted(action) {
  return (event) => {
    event.preventDefault();
    action(event);
  };
}

/**
 * Asks in `holder` before an action: the question (`<prefix>-question`), a yes button
 * (`<prefix>-confirm-yes`, which gets the focus, so Enter confirms) and Cancel, which empties
 * `holder` and gives the focus back to `returnTo`.
 * @param {HTMLElement} holder
 * @param {{ prefix: string, question: string, yes: string, onYes: () => void, returnTo: HTMLElement }} options
 */
export function confirmation(holder, { prefix, question, yes, onYes, returnTo }) {
  const button = h("button", { type: "button", id: `${prefix}-confirm-yes`, onclick: () => onYes() }, yes);
  const cancel = () => {
    replace(holder);
    returnTo.focus();
  };
  replace(
    holder,
    h(
      "div",
      { class: "notice", role: "alertdialog", "aria-labelledby": `${prefix}-question` },
      h("p", { id: `${prefix}-question` }, question),
      button,
      " ",
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel"),
    ),
  );
  button.focus();
}
