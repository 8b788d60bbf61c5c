import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { jsonSchemas } from "../src/index.js";

const dir = fileURLToPath(new URL("../schemas/", import.meta.url));

describe("committed JSON Schemas", () => {
  it("match the zod schemas (run `pnpm schemas` after changing a contract)", () => {
    const generated = jsonSchemas();
    const committed = readdirSync(dir).filter((f) => f.endsWith(".schema.json"));
    expect(committed.sort()).toEqual(Object.keys(generated).sort());
    for (const [name, text] of Object.entries(generated)) {
      expect(readFileSync(dir + name, "utf8"), `${name} is stale: run \`pnpm schemas\``).toBe(text);
    }
  });

  it("describe the envelope and the subject token rule", () => {
    const scored = JSON.parse(jsonSchemas()["lead.scored.v1.schema.json"] ?? "{}");
    const def = scored.$defs["lead.scored.v1"];
    expect(def.required).toEqual(
      expect.arrayContaining([
        "specversion",
        "id",
        "type",
        "source",
        "time",
        "subject",
        "datacontenttype",
        "tenant",
        "data",
      ]),
    );
    expect(def.properties.tenant.pattern).toBe("^[A-Za-z0-9_-]{1,64}$");
    expect(def.properties.type.const).toBe("lead.scored.v1");
  });
});
