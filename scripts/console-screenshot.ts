/**
 * Takes docs/console.png from a running engine (`npm start`): posts a few leads, signs in to the
 * console and captures a lead's page once its follow-ups have run, then the overview.
 *
 *   FOLLOWUP_SCHEDULES=3s,6s npm start           # in one terminal
 *   node --import tsx scripts/console-screenshot.ts [console URL] [lead-intake URL] [API key]
 */
import { join } from "node:path";
import { launchChromium, REPO_ROOT } from "../test/support/index.js";

/** What the page function below reads of the browser (scripts are compiled without the DOM's types). */
declare const document: { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

const [consoleUrl = "http://127.0.0.1:8004/console/", intakeUrl = "http://127.0.0.1:8000", key = "dev-key"] =
  process.argv.slice(2);

async function postLead(lead: object): Promise<string> {
  const res = await fetch(`${intakeUrl}/v1/lead`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key },
    body: JSON.stringify(lead),
  });
  if (!res.ok) throw new Error(`POST /v1/lead answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { data: { lead_id: string } }).data.lead_id;
}

const leadId = await postLead({
  name: "Alex Rivera",
  phone: "+1-555-0199",
  details: "Urgent: Need to book immediately for tomorrow morning. Budget $5000, credit card ready.",
});
await postLead({
  name: "Sam Lee",
  phone: "+1-555-0142",
  details: "Urgent, ready to book a table for six tonight.",
});

const browser = await launchChromium();
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(consoleUrl);
  await page.locator("#api-key").fill(key);
  await page.keyboard.press("Enter");
  await page.locator("#who", { hasText: "tenant" }).waitFor();
  await page.goto(`${consoleUrl}#/lead/${leadId}`);
  // Every follow-up of the lead delivered (the live stream updates the page).
  await page.waitForFunction(
    () => {
      const statuses = Array.from(
        document.querySelectorAll("#followups [data-status]"),
        (e) => e.textContent,
      );
      return statuses.length > 0 && statuses.every((s) => s === "delivered");
    },
    undefined,
    { timeout: 120_000 },
  );
  const file = join(REPO_ROOT, "docs", "console.png");
  await page.screenshot({ path: file, fullPage: true });
  process.stdout.write(`wrote ${file}\n`);
} finally {
  await browser.close();
}
