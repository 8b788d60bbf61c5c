// Writes packages/contracts/schemas/*.schema.json from the zod schemas.
// Run after changing a contract: `pnpm schemas`. A test fails while they are stale.
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { jsonSchemas } from "../src/json-schema.js";

const dir = fileURLToPath(new URL("../schemas/", import.meta.url));
const files = jsonSchemas();
for (const stale of readdirSync(dir)) {
  if (stale.endsWith(".schema.json") && !(stale in files)) rmSync(dir + stale);
}
for (const [name, text] of Object.entries(files)) writeFileSync(dir + name, text);
console.log(`wrote ${Object.keys(files).length} JSON Schemas to packages/contracts/schemas/`);
