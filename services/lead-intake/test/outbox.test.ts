import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { type LeadScored, makeEvent, type StoredLead } from "@followup/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { OutboxLockedError } from "../src/outbox/lock.js";
import { entryFileName, LeadOutbox, OutboxFullError, parseEntryFileName } from "../src/outbox/outbox.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "outbox-test-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
function lead(tenant = "acme"): { lead: StoredLead; event: LeadScored } {
  counter++;
  const leadId = `L${String(counter).padStart(5, "0")}`;
  const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, counter)).toISOString();
  const stored: StoredLead = {
    lead_id: leadId,
    tenant,
    name: "Zoë Ålander",
    phone: "+1-555-0100",
    details: "détails ✓",
    enrichment: { intent: "lead_capture", sentiment: "positive", urgency: "high", score: 0.9 },
    pred_prob: 0.8,
    model_version: "test",
    created_at: createdAt,
  };
  const event = makeEvent("lead.scored.v1", {
    source: "/lead-intake",
    subject: leadId,
    tenant,
    data: {
      lead_id: leadId,
      created_at: createdAt,
      pred_prob: 0.8,
      score: 0.9,
      intent: "lead_capture",
      sentiment: "positive",
      urgency: "high",
      model_version: "test",
    },
  });
  return { lead: stored, event };
}

describe("outbox file names", () => {
  it("sort in sequence order and parse back; other names are not entries", () => {
    const names = [10, 9, 100, 1].map((seq) => entryFileName(seq, "acme", `L-${seq}`));
    expect([...names].sort().map((n) => parseEntryFileName(n)?.seq)).toEqual([1, 9, 10, 100]);
    expect(parseEntryFileName(entryFileName(42, "t_1", "abc-DEF"))).toEqual({
      seq: 42,
      tenant: "t_1",
      leadId: "abc-DEF",
    });
    for (const name of ["outbox.lock", "000000000001.acme.L1.json.tmp", "1.acme.L1.json", "x.json"]) {
      expect(parseEntryFileName(name)).toBeNull();
    }
    expect(() => entryFileName(1, "a.b", "L1")).toThrow();
    expect(() => entryFileName(0, "acme", "L1")).toThrow();
  });
});

describe("LeadOutbox", () => {
  it("keeps concurrent appends in call order, on disk, readable after a reopen", async () => {
    const dir = tempDir();
    const { outbox } = await LeadOutbox.open({ dir, maxLeads: 100 });
    const items = Array.from({ length: 40 }, () => lead());
    await Promise.all(items.map((item) => outbox.append(item.lead, item.event)));
    expect(outbox.depth).toBe(40);
    const files = readdirSync(dir).filter((n) => n.endsWith(".json"));
    expect(files.sort().map((n) => parseEntryFileName(n)?.leadId)).toEqual(items.map((i) => i.lead.lead_id));
    // Personal data is on disk: readable by this user only.
    expect(readFileSync(join(dir, files[0] as string), "utf8")).toContain("Zoë Ålander");
    await outbox.close();

    // As after a kill -9: a temp file of a write that was never acknowledged is left behind.
    writeFileSync(join(dir, `${entryFileName(41, "acme", "Lhalf")}.tmp`), '{"half');
    const reopened = await LeadOutbox.open({ dir, maxLeads: 100 });
    expect(reopened.removedTemp).toBe(1);
    const again = reopened.outbox;
    expect(again.depth).toBe(40);
    const order: string[] = [];
    for (let slot = again.head(); slot !== undefined; slot = again.head()) {
      const entry = await again.read(slot);
      order.push(entry.lead.lead_id);
      expect(entry.event.data.lead_id).toBe(entry.lead.lead_id);
      await again.remove(slot);
    }
    expect(order).toEqual(items.map((i) => i.lead.lead_id));
    // Sequences keep growing after a reopen, so a new lead never sorts before an old one.
    const later = lead();
    const slot = await again.append(later.lead, later.event);
    expect(slot.seq).toBe(41);
    await again.close();
  });

  it("finds a queued lead by tenant and id, and only for its tenant", async () => {
    const { outbox } = await LeadOutbox.open({ dir: tempDir(), maxLeads: 10 });
    const item = lead("acme");
    await outbox.append(item.lead, item.event);
    expect(outbox.holds("acme", item.lead.lead_id)).toBe(true);
    expect(outbox.holds("globex", item.lead.lead_id)).toBe(false);
    expect((await outbox.find("acme", item.lead.lead_id))?.lead).toEqual(item.lead);
    expect(await outbox.find("globex", item.lead.lead_id)).toBeNull();
    await outbox.close();
  });

  it("refuses a lead beyond its capacity and takes one again once an entry is removed", async () => {
    const { outbox } = await LeadOutbox.open({ dir: tempDir(), maxLeads: 3 });
    const items = Array.from({ length: 4 }, () => lead());
    const results = await Promise.allSettled(items.map((i) => outbox.append(i.lead, i.event)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected"]);
    expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(OutboxFullError);
    expect(outbox.depth).toBe(3);
    await outbox.remove(outbox.head()!);
    const extra = items[3]!;
    await outbox.append(extra.lead, extra.event);
    expect(outbox.depth).toBe(3);
    await outbox.close();
  });

  it("sets an unreadable entry aside instead of blocking the ones behind it", async () => {
    const dir = tempDir();
    const { outbox } = await LeadOutbox.open({ dir, maxLeads: 10 });
    const first = lead();
    const second = lead();
    const slot = await outbox.append(first.lead, first.event);
    await outbox.append(second.lead, second.event);
    writeFileSync(slot.file, '{"version": 1, "seq": "broken"}');
    await expect(outbox.read(slot)).rejects.toThrow(/does not hold/);
    const kept = await outbox.setAside(slot);
    expect(kept.endsWith(".unreadable")).toBe(true);
    expect(readdirSync(dir)).toContain(kept.split("/").pop());
    expect((await outbox.read(outbox.head()!)).lead.lead_id).toBe(second.lead.lead_id);
    await outbox.close();
    // The set-aside file is not an entry on the next start.
    const reopened = await LeadOutbox.open({ dir, maxLeads: 10 });
    expect(reopened.outbox.depth).toBe(1);
    await reopened.outbox.close();
  });

  it("is held by one live process per host; a dead holder's lock is taken over", async () => {
    const dir = tempDir();
    // A live process other than this one: the parent (the vitest main process).
    writeFileSync(join(dir, "outbox.lock"), JSON.stringify({ pid: process.ppid, host: hostname() }));
    await expect(LeadOutbox.open({ dir, maxLeads: 10 })).rejects.toBeInstanceOf(OutboxLockedError);
    await expect(LeadOutbox.open({ dir, maxLeads: 10 })).rejects.toThrow(/own OUTBOX_DIR/);

    // A holder that has exited (as after kill -9): its pid is no longer running.
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    writeFileSync(join(dir, "outbox.lock"), JSON.stringify({ pid: Number(gone.stdout), host: hostname() }));
    const { outbox } = await LeadOutbox.open({ dir, maxLeads: 10 });
    expect(JSON.parse(readFileSync(join(dir, "outbox.lock"), "utf8"))).toMatchObject({ pid: process.pid });
    await outbox.close();
    // Released, and an empty outbox leaves no directory behind.
    expect(existsSync(dir)).toBe(false);
  });
});
