import {
  MAX_SEQUENCE_STEPS,
  MAX_SEQUENCES_PER_TENANT,
  SEQUENCE_EXAMPLE,
  SequenceList,
  SequenceRecord,
  SequenceView,
} from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ACME_KEY,
  type ApiCall,
  apiCall,
  detailsOf,
  expectFieldRefused,
  freshName,
  GLOBEX_KEY,
  type Intake,
  jsonHeaders,
  putExampleTemplates,
  startIntake,
  startIntakeWithServer,
  stopIntakeWithServer,
} from "./fixtures.js";

let server: NatsServer;
let intake: Intake;
let bucket: KV;
const NOW = new Date("2026-03-02T15:04:05.000Z");

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer({ now: () => NOW }));
  bucket = await new Kvm(intake.nc!).open("sequences");
  // The example's steps name these: a step's template must exist.
  await putExampleTemplates(intake.app, ACME_KEY);
  await putExampleTemplates(intake.app, GLOBEX_KEY);
});

afterAll(async () => {
  await stopIntakeWithServer(intake, server);
});

/** The example. */
const EXAMPLE = SEQUENCE_EXAMPLE;

type Call = ApiCall;
const fresh = freshName;

const call = (method: "GET" | "PUT" | "DELETE", url: string, options: Parameters<typeof apiCall>[3] = {}) =>
  apiCall(intake.app, method, url, options);

const put = (name: string, body: unknown, options: { key?: string; ifMatch?: string } = {}) =>
  call("PUT", `/v1/sequences/${name}`, { body, ...options });
const get = (name: string, key?: string) => call("GET", `/v1/sequences/${name}`, key ? { key } : {});
const view = (c: Call) => SequenceView.parse(c.body.data);
const list = (c: Call) => SequenceList.parse(c.body.data);
/** The names GET /v1/sequences lists for the key's tenant. */
const listedNames = async (key?: string) =>
  list(await call("GET", "/v1/sequences", key ? { key } : {})).sequences.map((s) => s.name);

/** The stored value of the tenant's key, or null: what a route said it did, checked in the bucket. */
async function storedValue(tenant: string, name: string): Promise<unknown> {
  const entry = await bucket.get(`${tenant}.${name}`);
  return entry === null || entry.operation !== "PUT" ? null : entry.json();
}

describe("PUT, GET, list, replace and delete against a real nats-server", () => {
  it("creates the issue's example (201), returning it with its revision as a quoted ETag", async () => {
    const name = fresh("welcome");
    const created = await put(name, EXAMPLE);
    expect(created.status).toBe(201);
    const data = view(created);
    expect(data).toEqual({ ...EXAMPLE, name, updated_at: NOW.toISOString(), revision: data.revision });
    expect(data.revision).toBeGreaterThan(0);
    expect(created.etag).toBe(`"${data.revision}"`);
    expect(created.body.data).not.toHaveProperty("tenant");

    const stored = SequenceRecord.parse(await storedValue("acme", name));
    expect(stored).toEqual({ ...EXAMPLE, tenant: "acme", name, updated_at: NOW.toISOString() });
    expect((await bucket.get(`acme.${name}`))?.revision).toBe(data.revision);

    const read = await get(name);
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(created.body.data);
    expect(read.etag).toBe(created.etag);
  });

  it("fills in the defaults", async () => {
    const name = fresh("minimal");
    const created = await put(name, {
      steps: [{ delay: "2h", channel: "email", template: "recap" }],
    });
    expect(created.status).toBe(201);
    expect(view(created)).toMatchObject({
      enabled: true,
      priority: 0,
      match: {},
      stop_on: ["booked", "unqualified", "spam"],
      steps: [{ delay: "2h", channel: "email", template: "recap" }],
    });
  });

  it("refuses a template that does not exist, now that templates exist (400 naming the step)", async () => {
    const name = fresh("unwritten");
    const refused = await put(name, {
      steps: [{ delay: "2h", channel: "email", template: "not-written-yet" }],
    });
    expect(refused.status).toBe(400);
    expect(detailsOf(refused).map((d) => d.path)).toEqual(["steps.0.template"]);
    expect(detailsOf(refused)[0]!.message).toContain("not-written-yet does not exist");
    expect(await storedValue("acme", name)).toBeNull();
  });

  it("checks each variant's template, naming the variant (400), and stores a holdout and variants", async () => {
    const name = fresh("variants");
    const refused = await put(name, {
      steps: [
        {
          delay: "2h",
          channel: "email",
          variants: [
            { name: "a", template: "recap", weight: 1 },
            { name: "b", template: "not-written-yet", weight: 1 },
          ],
        },
      ],
    });
    expect(refused.status).toBe(400);
    expect(detailsOf(refused).map((d) => d.path)).toEqual(["steps.0.variants.1.template"]);
    const variants = [
      { name: "a", template: "recap", weight: 3 },
      { name: "b", template: "recap", weight: 1 },
    ];
    const stored = await put(name, { holdout_pct: 10, steps: [{ delay: "2h", channel: "email", variants }] });
    expect(stored.status).toBe(201);
    expect(view(stored).holdout_pct).toBe(10);
    expect(view(stored).steps[0]?.variants).toEqual(variants);
  });

  it("replaces without If-Match (200), under a new revision", async () => {
    const name = fresh("replace");
    const first = view(await put(name, EXAMPLE));
    const replaced = await put(name, { ...EXAMPLE, priority: 20 });
    expect(replaced.status).toBe(200);
    expect(view(replaced).priority).toBe(20);
    expect(view(replaced).revision).toBeGreaterThan(first.revision);
    expect(view(await get(name)).priority).toBe(20);
  });

  it("lists the tenant's sequences by name, and only the tenant's", async () => {
    const names = [fresh("zeta"), fresh("alpha"), fresh("mid")];
    for (const name of names) expect((await put(name, EXAMPLE)).status).toBe(201);
    const globexOnly = fresh("globex-only");
    expect((await put(globexOnly, EXAMPLE, { key: GLOBEX_KEY })).status).toBe(201);

    const listed = await call("GET", "/v1/sequences");
    expect(listed.status).toBe(200);
    const { count, sequences } = list(listed);
    expect(count).toBe(sequences.length);
    const acmeNames = sequences.map((s) => s.name);
    expect(acmeNames).toEqual([...acmeNames].sort());
    for (const name of names) expect(acmeNames).toContain(name);
    expect(acmeNames).not.toContain(globexOnly);
    for (const s of sequences) expect((await bucket.get(`acme.${s.name}`))?.revision).toBe(s.revision);

    const globexNames = await listedNames(GLOBEX_KEY);
    expect(globexNames).toContain(globexOnly);
    for (const name of names) expect(globexNames).not.toContain(name);
  });

  it("deletes: then it is not found, not listed, and PUT creates it again (201)", async () => {
    const name = fresh("gone");
    await put(name, EXAMPLE);
    const deleted = await call("DELETE", `/v1/sequences/${name}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data).toEqual({ name, deleted: true });
    expect(await storedValue("acme", name)).toBeNull();
    expect((await get(name)).status).toBe(404);
    expect((await get(name)).body.error?.code).toBe("not_found");
    expect(await listedNames()).not.toContain(name);
    expect((await call("DELETE", `/v1/sequences/${name}`)).status).toBe(404);
    expect((await put(name, EXAMPLE)).status).toBe(201);
  });
});

describe("validation: every bad field named with its rule, nothing stored", () => {
  /** The example with one field broken: the only field the answer may name. */
  interface Example {
    steps: { delay: string; channel: string; template?: string }[];
    send_window: { timezone?: string; days: string[]; start: string; end: string };
    stop_on: string[];
    [field: string]: unknown;
  }
  const broken = (edit: (body: Example) => void): Example => {
    const body: Example = structuredClone(EXAMPLE);
    edit(body);
    return body;
  };
  it.each([
    [
      "an unparseable delay",
      broken((b) => {
        b.steps[1]!.delay = "1 fortnight";
      }),
      "steps.1.delay",
      '"1 fortnight": expected',
    ],
    [
      "more than 20 steps",
      broken((b) => {
        b.steps = Array.from({ length: MAX_SEQUENCE_STEPS + 1 }, (_, i) => ({
          delay: `${(i + 1) * 10}m`,
          channel: "email",
          template: "recap",
        }));
      }),
      "steps",
      `at most ${MAX_SEQUENCE_STEPS} steps`,
    ],
    [
      "a window whose end is not after its start",
      broken((b) => {
        b.send_window.end = "08:30";
      }),
      "send_window.end",
      "must be after start (09:00)",
    ],
    [
      "an unknown IANA time zone",
      broken((b) => {
        b.send_window.timezone = "America/Gotham";
      }),
      "send_window.timezone",
      "IANA time zone",
    ],
    [
      "an unknown weekday",
      broken((b) => {
        b.send_window.days = ["mon", "tue", "funday"];
      }),
      "send_window.days.2",
      "mon, tue, wed, thu, fri, sat, sun",
    ],
    [
      "an unknown outcome",
      broken((b) => {
        b.stop_on = ["booked", "vanished"];
      }),
      "stop_on.1",
      "booked",
    ],
    [
      "a channel that is not registered",
      broken((b) => {
        b.steps[0]!.channel = "pager";
      }),
      "steps.0.channel",
      "hook, sms, email, slack",
    ],
    [
      "an unknown field",
      broken((b) => {
        b.priorty = 3;
      }),
      "(root)",
      "priorty",
    ],
  ])("%s: 400 validation_error naming the field and the rule", async (_what, body, path, rule) => {
    const name = fresh("invalid");
    expectFieldRefused(await put(name, body), path, rule);
    expect(await storedValue("acme", name)).toBeNull();
    expect((await get(name)).status).toBe(404);
  });

  it("names every bad field of one body at once", async () => {
    const res = await put(fresh("many"), {
      steps: [{ delay: "soon", channel: "fax" }],
      stop_on: ["won"],
      send_window: { timezone: "Nowhere/City", start: "10:00", end: "10:00" },
    });
    expect(res.status).toBe(400);
    const paths = detailsOf(res)
      .map((d) => d.path)
      .sort();
    expect(paths).toEqual(
      ["send_window.end", "send_window.timezone", "steps.0.channel", "steps.0.delay", "stop_on.0"].sort(),
    );
  });

  it("refuses a body that is missing or not JSON", async () => {
    const missing = await call("PUT", `/v1/sequences/${fresh("nobody")}`);
    expect(missing.status).toBe(400);
    expect(missing.body.error?.code).toBe("validation_error");
    const broken = await intake.app.inject({
      method: "PUT",
      url: `/v1/sequences/${fresh("broken")}`,
      headers: jsonHeaders(),
      payload: "{",
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().error.code).toBe("invalid_json");
  });

  it.each([
    ["upper case", "Welcome"],
    ["a dot", "a.b"],
    ["65 characters", "x".repeat(65)],
  ])("a name with %s is 400 naming `name` on every route, and nothing is stored", async (_what, name) => {
    const url = `/v1/sequences/${encodeURIComponent(name)}`;
    for (const res of [
      await call("GET", url),
      await call("PUT", url, { body: EXAMPLE }),
      await call("DELETE", url),
    ]) {
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe("validation_error");
      expect(res.body.error?.details).toEqual([
        { path: "name", message: "must be 1-64 characters of a-z, 0-9, '_' or '-'" },
      ]);
    }
    const names = await listedNames();
    expect(names).not.toContain(name);
    expect(names).not.toContain(name.toLowerCase());
  });

  it("a 64-character name is fine", async () => {
    expect((await put("y".repeat(64), EXAMPLE)).status).toBe(201);
  });

  it("an If-Match that is no revision is 400 naming if-match", async () => {
    const name = fresh("badmatch");
    const { revision } = view(await put(name, EXAMPLE));
    for (const ifMatch of ["abc", 'W/"1"', "0", '""']) {
      const res = await put(name, { ...EXAMPLE, priority: 1 }, { ifMatch });
      expect(res.status, ifMatch).toBe(400);
      expect(detailsOf(res).map((d) => d.path)).toEqual(["if-match"]);
    }
    expect(view(await get(name)).revision).toBe(revision);
  });
});

describe("If-Match: two operators editing at once never overwrite each other", () => {
  it("a stale If-Match is 412 revision_mismatch and leaves the stored sequence as it was", async () => {
    const name = fresh("stale");
    const first = view(await put(name, EXAMPLE));
    const second = view(await put(name, { ...EXAMPLE, priority: 11 }));
    const before = await storedValue("acme", name);

    const stale = await put(name, { ...EXAMPLE, priority: 99 }, { ifMatch: `"${first.revision}"` });
    expect(stale.status).toBe(412);
    expect(stale.body.error?.code).toBe("revision_mismatch");
    expect(stale.body.error?.message).toContain(`revision ${second.revision}`);
    expect(stale.etag).toBe(`"${second.revision}"`);
    expect(await storedValue("acme", name)).toEqual(before);
    expect(view(await get(name))).toMatchObject({ priority: 11, revision: second.revision });

    const staleDelete = await call("DELETE", `/v1/sequences/${name}`, { ifMatch: String(first.revision) });
    expect(staleDelete.status).toBe(412);
    expect(await storedValue("acme", name)).toEqual(before);
  });

  it("the current revision, quoted or not, replaces it (200) under a new one", async () => {
    const name = fresh("current");
    const first = view(await put(name, EXAMPLE));
    const quoted = await put(name, { ...EXAMPLE, priority: 12 }, { ifMatch: `"${first.revision}"` });
    expect(quoted.status).toBe(200);
    const second = view(quoted);
    expect(second.revision).toBeGreaterThan(first.revision);
    expect(quoted.etag).toBe(`"${second.revision}"`);

    const bare = await put(name, { ...EXAMPLE, priority: 13 }, { ifMatch: String(second.revision) });
    expect(bare.status).toBe(200);
    const listedMatch = await put(
      name,
      { ...EXAMPLE, priority: 14 },
      { ifMatch: `"${first.revision}", "${view(bare).revision}"` },
    );
    expect(listedMatch.status).toBe(200);
    const star = await put(name, { ...EXAMPLE, priority: 15 }, { ifMatch: "*" });
    expect(star.status).toBe(200);
    expect(view(await get(name))).toMatchObject({ priority: 15, revision: view(star).revision });

    const deleted = await call("DELETE", `/v1/sequences/${name}`, { ifMatch: star.etag! });
    expect(deleted.status).toBe(200);
    expect(await storedValue("acme", name)).toBeNull();
  });

  it("If-Match on a sequence that does not exist (never, or any more) is 412 and creates nothing", async () => {
    const never = fresh("never");
    for (const ifMatch of ['"1"', "*"]) {
      const res = await put(never, EXAMPLE, { ifMatch });
      expect(res.status, ifMatch).toBe(412);
      expect(res.body.error?.code).toBe("revision_mismatch");
      expect(res.body.error?.message).toContain("does not exist");
    }
    expect(await storedValue("acme", never)).toBeNull();

    const gone = fresh("deleted");
    const { revision } = view(await put(gone, EXAMPLE));
    await call("DELETE", `/v1/sequences/${gone}`);
    // The deletion's own revision is the key's last one: it must not match either.
    const deletion = (await bucket.get(`acme.${gone}`))!.revision;
    for (const ifMatch of [String(revision), String(deletion)]) {
      expect((await put(gone, EXAMPLE, { ifMatch })).status, ifMatch).toBe(412);
    }
    expect(await storedValue("acme", gone)).toBeNull();
  });

  it("of two concurrent PUTs with the same If-Match exactly one wins; the other is 412", async () => {
    const name = fresh("race");
    const { revision } = view(await put(name, EXAMPLE));
    const results = await Promise.all(
      [21, 22].map((priority) => put(name, { ...EXAMPLE, priority }, { ifMatch: `"${revision}"` })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 412]);
    const winner = results.find((r) => r.status === 200)!;
    const loser = results.find((r) => r.status === 412)!;
    expect(loser.body.error?.code).toBe("revision_mismatch");
    const stored = view(await get(name));
    expect(stored).toEqual(view(winner));
    expect(SequenceRecord.parse(await storedValue("acme", name)).priority).toBe(view(winner).priority);
  });
});

describe("tenants", () => {
  it("another tenant's sequence is not found, cannot be replaced or deleted, and stays as it was", async () => {
    const name = fresh("acme-own");
    const acme = view(await put(name, EXAMPLE));
    const before = await storedValue("acme", name);

    const read = await get(name, GLOBEX_KEY);
    expect(read.status).toBe(404);
    expect(read.body.error?.code).toBe("not_found");
    expect(read.body.error?.message).toBe("sequence not found");

    // For globex there is no such sequence: If-Match cannot match (412, as for any missing one),
    // and it does not learn acme's revision.
    const replace = await put(
      name,
      { ...EXAMPLE, priority: 1 },
      { key: GLOBEX_KEY, ifMatch: `"${acme.revision}"` },
    );
    expect(replace.status).toBe(412);
    expect(replace.etag).toBeUndefined();
    expect(replace.body.error?.message).toContain("does not exist");
    expect(replace.body.error?.details).toEqual([{ path: "if-match", message: "no current revision" }]);

    const deleted = await call("DELETE", `/v1/sequences/${name}`, { key: GLOBEX_KEY });
    expect(deleted.status).toBe(404);
    const deletedIfMatch = await call("DELETE", `/v1/sequences/${name}`, {
      key: GLOBEX_KEY,
      ifMatch: String(acme.revision),
    });
    expect(deletedIfMatch.status).toBe(404);

    expect(await storedValue("acme", name)).toEqual(before);
    expect(await storedValue("globex", name)).toBeNull();
    expect(view(await get(name))).toEqual(acme);
  });

  it(`a tenant has at most ${MAX_SEQUENCES_PER_TENANT} sequences: one more is 409, a replacement is fine`, async () => {
    // A tenant of its own, so the other tests' sequences do not count.
    const crowded = await startIntake({ server, env: { API_KEYS: "crowd-key:crowd" } });
    try {
      await putExampleTemplates(crowded.app, "crowd-key");
      const putAs = (name: string, priority = 0) =>
        crowded.app.inject({
          method: "PUT",
          url: `/v1/sequences/${name}`,
          headers: jsonHeaders("crowd-key"),
          payload: JSON.stringify({ ...EXAMPLE, priority }),
        });
      for (let i = 0; i < MAX_SEQUENCES_PER_TENANT; i++) expect((await putAs(`s${i}`)).statusCode).toBe(201);
      const refused = await putAs("one-more");
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe("conflict");
      expect(refused.json().error.message).toContain(`${MAX_SEQUENCES_PER_TENANT} sequences`);
      const kv = await new Kvm(crowded.nc!).open("sequences");
      expect(await kv.get("crowd.one-more")).toBeNull();
      expect((await putAs("s0", 5)).statusCode).toBe(200);
      expect(
        (
          await crowded.app.inject({
            method: "DELETE",
            url: "/v1/sequences/s1",
            headers: jsonHeaders("crowd-key"),
          })
        ).statusCode,
      ).toBe(200);
      expect((await putAs("one-more")).statusCode).toBe(201);
    } finally {
      await crowded.close();
    }
  });

  it("the same name in two tenants is two sequences", async () => {
    const name = fresh("shared");
    await put(name, { ...EXAMPLE, priority: 1 });
    await put(name, { ...EXAMPLE, priority: 2 }, { key: GLOBEX_KEY });
    expect(view(await get(name)).priority).toBe(1);
    expect(view(await get(name, GLOBEX_KEY)).priority).toBe(2);
  });

  it("without a valid x-api-key every route is 401 and nothing is stored", async () => {
    const name = fresh("anon");
    for (const res of [
      await call("GET", "/v1/sequences", { key: null }),
      await call("GET", `/v1/sequences/${name}`, { key: null }),
      await call("PUT", `/v1/sequences/${name}`, { key: null, body: EXAMPLE }),
      await call("PUT", `/v1/sequences/${name}`, { key: "not-a-key", body: EXAMPLE }),
      await call("DELETE", `/v1/sequences/${name}`, { key: null }),
    ]) {
      expect(res.status).toBe(401);
      expect(res.body.error?.code).toBe("unauthorized");
    }
    expect(await storedValue("acme", name)).toBeNull();
  });
});
