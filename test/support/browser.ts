import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/**
 * Debian's `chromium` package, driven by playwright-core (which ships no browser of its own):
 * scripts/bootstrap.sh installs the package where it is missing, as it installs nats-server.
 * CHROMIUM_BIN points elsewhere.
 */
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/** A headless Chromium; close it in afterAll. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_BIN)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_BIN}: run \`bash scripts/bootstrap.sh\` (it installs Debian's chromium package) or set CHROMIUM_BIN`,
    );
  }
  // --no-sandbox: CI and the dev machines run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: ["--no-sandbox"] });
}
