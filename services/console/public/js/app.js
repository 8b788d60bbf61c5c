import { ApiError, apiKey, call, signIn, signOut } from "./api.js";
import { replace } from "./dom.js";
import * as deadLetters from "./pages/dead-letters.js";
import * as experiments from "./pages/experiments.js";
import * as lead from "./pages/lead.js";
import * as overview from "./pages/overview.js";
import * as sequences from "./pages/sequences.js";
import * as suppressions from "./pages/suppressions.js";
import * as templates from "./pages/templates.js";
import * as upcoming from "./pages/upcoming.js";

/** Pages by the first part of the hash (`#/lead/<id>`: page `lead`, params `[<id>]`). */
const PAGES = {
  overview,
  upcoming,
  lead,
  "dead-letters": deadLetters,
  sequences,
  templates,
  suppressions,
  experiments,
};

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
let cleanup = () => {};

function route() {
  cleanup();
  cleanup = () => {};
  const page = $("page");
  if (!apiKey()) {
    page.replaceChildren();
    $("nav").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    replace($("who"));
    $("api-key").focus();
    return;
  }
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  const [name = "overview", ...params] = location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .map(decodeURIComponent);
  const current = PAGES[name] ? name : "overview";
  for (const link of $("nav").querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${current}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  page.replaceChildren();
  const stop = PAGES[current].render(page, params);
  cleanup = typeof stop === "function" ? stop : () => {};
}

async function showTenant() {
  try {
    const { data } = await call("GET", "/v1/caller");
    replace($("who"), `tenant ${data.tenant}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut();
      route();
    }
  }
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("api-key"));
  const error = $("sign-in-error");
  replace(error);
  try {
    const { data } = await call("GET", "/v1/caller", { key: input.value });
    signIn(input.value);
    input.value = "";
    replace($("who"), `tenant ${data.tenant}`);
    if (!location.hash || location.hash === "#/") location.hash = "#/overview";
    route();
    $("main").focus();
  } catch (err) {
    replace(
      error,
      err instanceof ApiError && err.status === 401 ? "That API key is not valid." : err.message,
    );
    input.select();
  }
});

$("sign-out").addEventListener("click", () => {
  signOut();
  route();
});

window.addEventListener("hashchange", route);
route();
if (apiKey()) void showTenant();
