import { describe, expect, it } from "vitest";
import {
  authorizationConfig,
  IDENTITIES,
  type Identity,
  inboxPrefixOf,
  permissionsFor,
  SERVICE_IDENTITIES,
  type SubjectPermission,
  scopeOf,
  type Topology,
  topology,
} from "../src/index.js";

/** nats-server's subject matching: `*` one token, `>` one or more trailing tokens. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** Whether nats-server would let `subject` through (allow list, then deny list). */
function allowed(permission: SubjectPermission, subject: string): boolean {
  const allow = permission.allow.length === 0 || permission.allow.some((p) => matches(p, subject));
  return allow && !(permission.deny ?? []).some((p) => matches(p, subject));
}

const topo = topology();
const canPublish = (identity: Identity, subject: string) =>
  allowed(permissionsFor(identity, topo).publish, subject);

describe("permissionsFor", () => {
  it.each([
    ["lead-intake", "lead.scored.acme.L1", true],
    ["lead-intake", "$KV.leads.acme.L1", true],
    ["lead-intake", "$JS.API.STREAM.MSG.DELETE.FOLLOWUP_DLQ", true],
    ["lead-intake", "$JS.API.STREAM.PURGE.FOLLOWUP_TIMERS", false],
    ["lead-intake", "followup.timer.acme.L1.1", false],
    ["lead-intake", "$KV.followup_plans.acme.L1", false],
    ["lead-intake", "$KV.sequences.acme.welcome", true],
    ["lead-intake", "$JS.API.DIRECT.GET.KV_sequences", true],
    ["lead-intake", "$JS.API.CONSUMER.CREATE.KV_sequences.w1.$KV.sequences.>", false],
    ["lead-intake", "$KV.templates.acme.first-touch", true],
    ["lead-intake", "$JS.API.DIRECT.GET.KV_templates", true],
    ["scheduler", "followup.timer.acme.L1.1", true],
    // Fired timers go to the dispatcher itself: the scheduler publishes no due follow-up.
    ["scheduler", "followup.due.acme.L1.1", false],
    ["scheduler", "$JS.API.STREAM.MSG.DELETE.FOLLOWUP_TIMERS", false],
    ["scheduler", "$JS.API.STREAM.PURGE.FOLLOWUP_TIMERS", true],
    ["scheduler", "$JS.API.CONSUMER.MSG.NEXT.LEADS.scheduler-scored", true],
    ["scheduler", "$JS.ACK.FOLLOWUP_TIMERS.scheduler-markers.1.2.3.4.0", false],
    ["scheduler", "$JS.API.CONSUMER.MSG.NEXT.FOLLOWUP_TIMERS.dispatcher-markers", false],
    ["dispatcher", "$JS.API.CONSUMER.MSG.NEXT.FOLLOWUP_TIMERS.dispatcher-markers", true],
    ["dispatcher", "$JS.ACK.FOLLOWUP_TIMERS.dispatcher-markers.1.2.3.4.0", true],
    ["dispatcher", "$JS.API.DIRECT.GET.KV_followup_plans.$KV.followup_plans.acme.L1", true],
    ["dispatcher", "$KV.followup_plans.acme.L1", false],
    // It writes a lead's next timer when a step's marker fires (one timer per lead at a time).
    ["dispatcher", "followup.timer.acme.L1.2", true],
    ["dispatcher", "$JS.API.STREAM.MSG.DELETE.FOLLOWUP_TIMERS", false],
    ["lead-intake", "$JS.API.DIRECT.GET.FOLLOWUP_TIMERS", true],
    ["scheduler", "$KV.leads.acme.L1", false],
    ["scheduler", "$JS.API.STREAM.MSG.GET.KV_hook_receipts", false],
    ["scheduler", "lead.scored.acme.L1", false],
    ["scheduler", "$KV.sequences.acme.welcome", false],
    ["scheduler", "$JS.API.DIRECT.GET.KV_sequences.$KV.sequences.acme.welcome", true],
    ["scheduler", "$JS.API.CONSUMER.CREATE.KV_sequences.KV_WATCHER_1.$KV.sequences.>", true],
    ["scheduler", "$JS.API.CONSUMER.INFO.KV_sequences.KV_WATCHER_1", true],
    ["scheduler", "$JS.API.CONSUMER.DELETE.KV_sequences.KV_WATCHER_1", true],
    ["scheduler", "$JS.FC.KV_sequences.x.1", true],
    ["scheduler", "$JS.API.CONSUMER.CREATE.KV_leads.KV_WATCHER_1.$KV.leads.>", false],
    ["scheduler", "$JS.API.CONSUMER.DELETE.LEADS.scheduler-scored", false],
    ["dispatcher", "followup.result.acme.L1.1", true],
    ["dispatcher", "$JS.API.STREAM.MSG.GET.KV_leads", true],
    ["dispatcher", "$JS.ACK.FOLLOWUPS.dispatcher.1.2.3.4.0", true],
    ["dispatcher", "lead.scored.acme.L1", false],
    ["dispatcher", "$JS.API.CONSUMER.MSG.NEXT.LEADS.scheduler-scored", false],
    ["dispatcher", "$JS.API.STREAM.PURGE.FOLLOWUPS", false],
    ["dispatcher", "$JS.API.DIRECT.GET.KV_sequences", false],
    ["dispatcher", "$JS.API.DIRECT.GET.KV_templates.$KV.templates.acme.first-touch", true],
    ["dispatcher", "$KV.templates.acme.first-touch", false],
    ["scheduler", "$JS.API.DIRECT.GET.KV_templates", false],
    ["tail", "lead.scored.acme.L1", false],
    ["tail", "$JS.API.INFO", false],
    ["provision", "$JS.API.STREAM.CREATE.LEADS", true],
    ["provision", "$JS.API.STREAM.CREATE.KV_leads", true],
    ["provision", "$JS.API.STREAM.CREATE.KV_sequences", true],
    ["provision", "$JS.API.STREAM.CREATE.KV_templates", true],
    ["provision", "$JS.API.CONSUMER.CREATE.FOLLOWUPS.dispatcher.followup.due.>", true],
    ["provision", "$JS.API.STREAM.CREATE.ROGUE", false],
    ["provision", "$JS.API.STREAM.DELETE.LEADS", false],
    // An earlier version's durable, deleted at provisioning so that it fires nothing any more.
    ["provision", "$JS.API.CONSUMER.DELETE.FOLLOWUP_TIMERS.scheduler-markers", true],
    ["provision", "$JS.API.CONSUMER.DELETE.FOLLOWUP_TIMERS.dispatcher-markers", false],
    ["provision", "lead.scored.acme.L1", false],
    ["provision", "$JS.API.STREAM.MSG.GET.KV_leads", false],
  ] as const)("%s publishing %s: %s", (identity, subject, expected) => {
    expect(canPublish(identity, subject)).toBe(expected);
  });

  it("no service may create, update or delete a stream or consumer", () => {
    for (const identity of SERVICE_IDENTITIES) {
      for (const op of [
        "STREAM.CREATE",
        "STREAM.UPDATE",
        "STREAM.DELETE",
        "CONSUMER.CREATE",
        "CONSUMER.DELETE",
      ]) {
        expect(canPublish(identity, `$JS.API.${op}.LEADS.x`), `${identity} ${op}`).toBe(false);
        expect(canPublish(identity, `$JS.API.${op}.LEADS`), `${identity} ${op}`).toBe(false);
      }
    }
  });

  it("lets tail subscribe to lead.> and followup.> and publish nothing", () => {
    const tail = permissionsFor("tail", topo);
    expect(tail.subscribe.allow.sort()).toEqual(["followup.>", "lead.>"]);
    expect(allowed(tail.publish, "anything.at.all")).toBe(false);
    expect(allowed(tail.subscribe, "_INBOX.tail.x")).toBe(false);
  });

  it("lets the console subscribe to the events of the streams it tails, and publish nothing to them", () => {
    const tailing = permissionsFor("console", topo);
    expect(tailing.subscribe.allow.sort()).toEqual(
      [
        "_INBOX.console.>",
        "followup.dead.>",
        "followup.fired.>",
        "followup.replayed.>",
        "followup.result.>",
        "followup.timer.>",
        "lead.>",
      ].sort(),
    );
    expect(allowed(tailing.subscribe, "followup.due.acme.L1.1")).toBe(false);
    expect(allowed(tailing.subscribe, "$KV.leads.acme.L1")).toBe(false);
    for (const subject of ["lead.scored.acme.L1", "followup.timer.acme.L1.1", "$KV.leads.acme.L1"]) {
      expect(allowed(tailing.publish, subject), subject).toBe(false);
    }
    for (const read of ["$JS.API.DIRECT.GET.KV_leads", "$JS.API.STREAM.MSG.GET.LEADS"]) {
      expect(allowed(tailing.publish, read), read).toBe(false);
    }
  });

  it("gives each identity its own inbox, and no other identity's", () => {
    for (const identity of IDENTITIES.filter((id) => id !== "tail")) {
      const { subscribe } = permissionsFor(identity, topo);
      // The console also tails (above); every other service subscribes to its inbox alone.
      const tails = identity === "console" ? subscribe.allow.slice(1) : [];
      expect(subscribe.allow).toEqual([`${inboxPrefixOf(identity)}.>`, ...tails]);
      for (const other of IDENTITIES.filter((id) => id !== identity)) {
        expect(allowed(subscribe, `${inboxPrefixOf(other)}.x.1`)).toBe(false);
      }
    }
  });

  it("names the work queue after FOLLOWUP_QUEUE", () => {
    const custom = topology({ queue: "acme_jobs" });
    const dispatcher = permissionsFor("dispatcher", custom).publish;
    expect(allowed(dispatcher, "$JS.API.CONSUMER.MSG.NEXT.ACME_JOBS.dispatcher")).toBe(true);
    expect(allowed(dispatcher, "$JS.API.CONSUMER.MSG.NEXT.FOLLOWUPS.dispatcher")).toBe(false);
  });

  it("follows the topology: a stream added with its writer is in that writer's permissions and provisioning", () => {
    const extra = {
      ...topo.streams.results,
      name: "FOLLOWUP_AUDIT",
      subjects: ["audit.>"],
      access: { ...topo.streams.results.access, writers: ["scheduler"] as const, readers: [] },
    };
    const grown = { ...topo, streams: { ...topo.streams, results: extra } } as unknown as Topology;
    expect(allowed(permissionsFor("scheduler", grown).publish, "audit.x")).toBe(true);
    expect(allowed(permissionsFor("dispatcher", grown).publish, "audit.x")).toBe(false);
    expect(allowed(permissionsFor("provision", grown).publish, "$JS.API.STREAM.CREATE.FOLLOWUP_AUDIT")).toBe(
      true,
    );
    expect(permissionsFor("tail", grown).subscribe.allow).toContain("audit.>");
  });

  it("leaves nothing of the topology to nobody: every stream has a writer, every part a service", () => {
    const scopes = SERVICE_IDENTITIES.map((id) => scopeOf(id, topo));
    for (const key of Object.keys(topo.streams) as (keyof Topology["streams"])[]) {
      expect(topo.streams[key].access.writers.length, key).toBeGreaterThan(0);
      expect(
        scopes.some((s) => s.streams.includes(key)),
        key,
      ).toBe(true);
    }
    for (const key of Object.keys(topo.consumers) as (keyof Topology["consumers"])[]) {
      expect(
        scopes.filter((s) => s.consumers.includes(key)),
        key,
      ).toHaveLength(1);
    }
    for (const key of Object.keys(topo.buckets) as (keyof Topology["buckets"])[]) {
      expect(topo.buckets[key].access.writers.length, key).toBeGreaterThan(0);
    }
  });

  it("scopes a service to what it touches: the dispatcher reads the plans and consumes the timers, not LEADS", () => {
    expect(scopeOf("dispatcher", topo)).toEqual({
      streams: ["timers", "followups", "results", "dead"],
      consumers: ["dispatchMarkers", "dispatch"],
      buckets: ["leads", "plans", "templates", "channels", "suppressions"],
    });
    expect(scopeOf("scheduler", topo).consumers).toEqual(["scored", "outcomes", "enrolments"]);
  });
});

describe("authorizationConfig", () => {
  const users = IDENTITIES.map((identity) => ({ identity, password: `pw-${identity}` }));

  it("lists one user per identity with its permissions and no user for anonymous clients", () => {
    const text = authorizationConfig(users, topo);
    for (const identity of IDENTITIES) expect(text).toContain(`user: "${identity}"`);
    expect(text).not.toMatch(/no_auth_user/);
    expect(text).toContain('publish: { deny: [">"] }');
    expect(text).toContain('"$JS.API.STREAM.PURGE.FOLLOWUP_TIMERS"');
  });

  it("refuses an unknown identity, a repeated one and an empty password, naming it", () => {
    expect(() => authorizationConfig([{ identity: "root" as Identity, password: "x" }], topo)).toThrow(
      /identity/,
    );
    expect(() => authorizationConfig([users[0]!, users[0]!], topo)).toThrow(/lead-intake is given twice/);
    expect(() => authorizationConfig([{ identity: "tail", password: "" }], topo)).toThrow(/password of tail/);
  });
});
