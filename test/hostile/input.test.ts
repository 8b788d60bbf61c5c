import { connect } from "node:net";
import { ErrorEnvelope, LeadAccepted, LeadRequest } from "@followup/contracts";
import { webhookHeaders } from "@followup/service-kit";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ACME_KEY,
  errorLogs,
  HOOK_KEY,
  type HostileIntake,
  type RawResponse,
  startHostileIntake,
} from "./intake.js";
import {
  deepOrLong,
  deepOrLongText,
  expectedHookStatus,
  expectedLeadStatus,
  expectedOutcomeStatus,
  hookLike,
  leadIdArbitrary,
  leadLike,
  pollution,
  utf8,
} from "./oracle.js";

/**
 * Property-based hostile input against lead-intake running as a process: random JSON, random
 * bytes, deep nesting, long strings, unicode and prototype-pollution keys on POST /v1/lead,
 * POST /v1/lead/:id/outcome and the hook receiver. Every answer is exactly what the contracts
 * say (so never a 5xx), the process never dies or logs an error, and JetStream holds exactly
 * what was accepted: nothing stored or published for invalid input.
 */

const RUNS = { json: 250, bytes: 150, contentType: 60, nesting: 40, pollution: 40, unicode: 60 } as const;

let intake: HostileIntake;
const JSON_KEY = { "content-type": "application/json", "x-api-key": ACME_KEY };

beforeAll(async () => {
  intake = await startHostileIntake();
});

afterAll(async () => {
  await intake?.close();
});

/** Every refusal is the one error envelope, naming the fields of a validation error. */
function checkRefusal(res: RawResponse, status: number): void {
  expect(res.status, res.text.slice(0, 300)).toBe(status);
  const body = ErrorEnvelope.parse(res.json);
  if (body.error.code === "validation_error") expect(body.error.details?.length).toBeGreaterThan(0);
}

async function postLead(bytes: Uint8Array, headers: Record<string, string> = JSON_KEY) {
  return intake.request("POST", "/v1/lead", { body: bytes, headers });
}

describe("POST /v1/lead under hostile input", () => {
  it("answers random JSON exactly as the contract says, and stores only the leads it accepts", async () => {
    const before = await intake.counts();
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(leadLike, leadLike, fc.jsonValue()), async (value) => {
        const bytes = utf8(JSON.stringify(value));
        const expected = expectedLeadStatus(bytes);
        const res = await postLead(bytes);
        if (expected === 200) {
          expect(res.status, res.text.slice(0, 300)).toBe(200);
          LeadAccepted.parse((res.json as { data: unknown }).data);
          accepted++;
        } else checkRefusal(res, expected);
      }),
      { numRuns: RUNS.json },
    );
    const after = await intake.counts();
    // Both sides were exercised: some leads were valid, most were not.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(RUNS.json);
    expect(after.scored - before.scored).toBe(accepted);
    expect(after.leads - before.leads).toBe(accepted);
    await intake.assertAlive();
  });

  it("refuses random bytes with a 4xx and stores nothing", async () => {
    const before = await intake.counts();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4_000 }), async (bytes) => {
        const res = await postLead(bytes);
        checkRefusal(res, expectedLeadStatus(bytes));
      }),
      { numRuns: RUNS.bytes },
    );
    expect(await intake.counts()).toEqual(before);
    await intake.assertAlive();
  });

  it("refuses any content type but JSON (415 or 400), whatever the body", async () => {
    const before = await intake.counts();
    const valid = utf8(JSON.stringify({ name: "Alex Rivera", phone: "+1-555-0199" }));
    const contentType = fc.oneof(
      fc.constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonp",
        "application/json-patch+json",
        "text/json",
        "*/*",
      ),
      fc.stringMatching(/^[a-z]{1,10}\/[a-z0-9.+-]{1,20}$/).filter((t) => !t.startsWith("application/json")),
    );
    await fc.assert(
      fc.asyncProperty(
        contentType,
        fc.oneof(fc.constant(valid), fc.uint8Array({ maxLength: 500 })),
        async (type, bytes) => {
          const res = await postLead(bytes, { "content-type": type, "x-api-key": ACME_KEY });
          expect([400, 415], `${type}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
          ErrorEnvelope.parse(res.json);
        },
      ),
      { numRuns: RUNS.contentType },
    );
    expect(await intake.counts()).toEqual(before);
  });

  it("survives deep nesting and over-long bodies (400 or 413, nothing stored)", async () => {
    const before = await intake.counts();
    await fc.assert(
      fc.asyncProperty(deepOrLong, async (input) => {
        const bytes = utf8(deepOrLongText(input));
        let res: RawResponse;
        try {
          res = await postLead(bytes);
        } catch (err) {
          // A body over the limit may be refused (413 and close) while the client is still sending it.
          if (input.shape !== "oversized") throw err;
          await intake.assertAlive();
          return;
        }
        checkRefusal(res, expectedLeadStatus(bytes));
      }),
      { numRuns: RUNS.nesting },
    );
    expect(await intake.counts()).toEqual(before);
    await intake.assertAlive();
  });

  it("refuses prototype-pollution keys at any depth, and nothing is polluted afterwards", async () => {
    const before = await intake.counts();
    await fc.assert(
      fc.asyncProperty(pollution, async (text) => {
        const res = await postLead(utf8(text));
        checkRefusal(res, 400);
        expect((res.json as ErrorEnvelope).error.code).toBe("invalid_json");
      }),
      { numRuns: RUNS.pollution },
    );
    expect(await intake.counts()).toEqual(before);
    // Had Object.prototype been polluted in the process, a lead without e-mail or outcome would show one.
    const clean = await postLead(utf8(JSON.stringify({ name: "Clean Lead", phone: "+1-555-0100" })));
    const leadId = (clean.json as { data: { lead_id: string } }).data.lead_id;
    const view = await intake.request("GET", `/v1/lead/${leadId}`, { headers: { "x-api-key": ACME_KEY } });
    const lead = (view.json as { data: { lead: Record<string, unknown> } }).data.lead;
    expect(lead.email).toBeUndefined();
    expect(lead.outcome).toBeUndefined();
    expect(lead.isAdmin).toBeUndefined();
  });

  it("keeps any unicode a valid lead holds exactly as sent (trimmed), through the store and back", async () => {
    // Valid by the contract (zod counts code points, so "\t𐀀" is one character too few).
    const unicodeLead = fc
      .record({
        name: fc.string({ unit: "binary", minLength: 2, maxLength: 60 }),
        phone: fc.constant("+1 (555) 010-0199"),
        details: fc.string({ unit: "grapheme", maxLength: 300 }),
      })
      .filter((value) => LeadRequest.safeParse(value).success);
    await fc.assert(
      fc.asyncProperty(unicodeLead, async (value) => {
        const res = await postLead(utf8(JSON.stringify(value)));
        expect(res.status, res.text.slice(0, 300)).toBe(200);
        const leadId = (res.json as { data: { lead_id: string } }).data.lead_id;
        const view = await intake.request("GET", `/v1/lead/${leadId}`, {
          headers: { "x-api-key": ACME_KEY },
        });
        const stored = (view.json as { data: { lead: { name: string; details: string } } }).data.lead;
        const expected = LeadRequest.parse(value);
        expect(stored.name).toBe(expected.name);
        expect(stored.details).toBe(expected.details);
      }),
      { numRuns: RUNS.unicode },
    );
  });
});

describe("POST /v1/lead/:id/outcome under hostile input", () => {
  it("answers random ids and bodies as the contract says, and publishes only accepted outcomes", async () => {
    const existing: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await postLead(utf8(JSON.stringify({ name: `Outcome Lead ${i}`, phone: "+1-555-0100" })));
      existing.push((res.json as { data: { lead_id: string } }).data.lead_id);
    }
    const known = new Set(existing);
    const before = await intake.counts();
    let accepted = 0;
    const body = fc.oneof(
      fc
        .record(
          {
            outcome: fc.oneof(
              fc.constantFrom("booked", "ghosted", "qualified", "unqualified", "nurture", "spam"),
              fc.string({ maxLength: 12 }),
            ),
            notes: fc.oneof(fc.string({ unit: "binary", maxLength: 50 }), fc.string({ maxLength: 2_100 })),
          },
          { requiredKeys: [] },
        )
        .map((v) => utf8(JSON.stringify(v))),
      fc.jsonValue({ maxDepth: 3 }).map((v) => utf8(JSON.stringify(v))),
      fc.uint8Array({ maxLength: 300 }),
      pollution.map(utf8),
    );
    await fc.assert(
      fc.asyncProperty(leadIdArbitrary(existing), body, async (id, bytes) => {
        const expected = expectedOutcomeStatus(bytes, id, known);
        const res = await intake.request("POST", `/v1/lead/${encodeURIComponent(id)}/outcome`, {
          body: bytes,
          headers: JSON_KEY,
        });
        if (expected === 200) {
          expect(res.status, res.text.slice(0, 300)).toBe(200);
          accepted++;
        } else checkRefusal(res, expected);
      }),
      { numRuns: 250 },
    );
    const after = await intake.counts();
    expect(accepted).toBeGreaterThan(0);
    expect(after.outcomes - before.outcomes).toBe(accepted);
    expect(after.scored).toBe(before.scored);
    await intake.assertAlive();
  });
});

describe("POST /ops/followup-hook under hostile input", () => {
  it("answers signed random payloads as the contract says, and records only valid ones", async () => {
    const before = await intake.counts();
    let recorded = 0;
    let call = 0;
    const idTail = fc.oneof(fc.stringMatching(/^[!-~]{0,40}$/), fc.stringMatching(/^[!-~]{200,300}$/));
    const body = fc.oneof(
      hookLike.map((v) => utf8(JSON.stringify(v))),
      fc.uint8Array({ maxLength: 300 }),
      pollution.map(utf8),
    );
    await fc.assert(
      fc.asyncProperty(body, idTail, async (bytes, tail) => {
        const webhookId = `hostile-${++call}-${tail}`;
        const text = Buffer.from(bytes).toString("utf8");
        const res = await intake.request("POST", "/ops/followup-hook", {
          body: bytes,
          headers: { "content-type": "application/json", ...webhookHeaders(HOOK_KEY, webhookId, text) },
        });
        // Bytes that are not UTF-8 reach the verifier changed, so their signature cannot match.
        const expected = utf8(text).length === bytes.length ? expectedHookStatus(bytes, webhookId) : 401;
        if (expected === 200) {
          expect(res.status, res.text.slice(0, 300)).toBe(200);
          expect(res.json).toEqual({ ok: true, message: "Follow-up hook received" });
          recorded++;
        } else if (expected === 401) {
          expect([400, 401]).toContain(res.status);
        } else checkRefusal(res, expected);
      }),
      { numRuns: 250 },
    );
    const after = await intake.counts();
    expect(recorded).toBeGreaterThan(0);
    expect(after.receipts - before.receipts).toBe(recorded);
    expect(after.scored).toBe(before.scored);
    await intake.assertAlive();
  });
});

describe("raw bytes on the socket", () => {
  /** Writes `bytes`, half-closes, and resolves with what came back once the server closes (or 3 s pass). */
  function exchange(bytes: Uint8Array): Promise<string> {
    const { port } = new URL(intake.url);
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const socket = connect({ host: "127.0.0.1", port: Number(port) });
      const done = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(Buffer.concat(chunks).toString("latin1"));
      };
      const timer = setTimeout(done, 3_000);
      socket.on("data", (chunk) => chunks.push(chunk));
      socket.on("error", done);
      socket.on("close", done);
      socket.on("connect", () => socket.end(bytes));
    });
  }

  it("survives garbage, broken requests and Content-Length lies; answers 4xx or nothing", async () => {
    const before = await intake.counts();
    const request = (head: string, body: string) =>
      utf8(
        `${head}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-api-key: ${ACME_KEY}\r\n${body}`,
      );
    const input = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 2_000 }),
      fc
        .tuple(fc.integer({ min: 30, max: 100_000 }), fc.string({ maxLength: 20 }))
        .map(([length, body]) =>
          request("POST /v1/lead HTTP/1.1", `Content-Length: ${length}\r\n\r\n{"name":"Alex Rivera",${body}`),
        ),
      fc
        .uint8Array({ maxLength: 200 })
        .map((junk) =>
          utf8(
            `POST /v1/lead HTTP/1.1\r\nTransfer-Encoding: chunked\r\n${Buffer.from(junk).toString("latin1")}`,
          ),
        ),
      fc.stringMatching(/^[A-Z]{1,10} [ -~]{0,100} HTTP\/[0-9.]{1,4}$/).map((line) => request(line, "\r\n")),
    );
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const answer = await exchange(bytes);
        const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
        if (status !== undefined) expect(Number(status)).toBeLessThan(500);
      }),
      { numRuns: 60 },
    );
    expect(await intake.counts()).toEqual(before);
    await intake.assertAlive();
  });
});

describe("after all of it", () => {
  it("the process is alive and logged no error (no 5xx was ever answered)", async () => {
    await intake.assertAlive();
    expect(errorLogs(intake.process)).toEqual([]);
  });
});
