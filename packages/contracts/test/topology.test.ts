import { describe, expect, it } from "vitest";
import { bucketStream, MARKER_TTL_MS, queueStreamName, subjects, topology, wildcards } from "../src/index.js";

describe("topology", () => {
  it("defaults to one replica and the followups queue", () => {
    const t = topology();
    expect(t.queue).toBe("followups");
    expect(t.streams.followups.name).toBe("FOLLOWUPS");
    for (const s of Object.values(t.streams)) expect(s.replicas).toBe(1);
    for (const b of Object.values(t.buckets)) expect(b.replicas).toBe(1);
  });

  it("takes replicas and the queue name from config", () => {
    const t = topology({ replicas: 3, queue: "acme_jobs" });
    expect(t.streams.followups.name).toBe("ACME_JOBS");
    expect(t.consumers.dispatch.stream).toBe("ACME_JOBS");
    for (const s of Object.values(t.streams)) expect(s.replicas).toBe(3);
  });

  it("refuses a queue name that cannot be a stream name", () => {
    expect(() => queueStreamName("a.b")).toThrow(/FOLLOWUP_QUEUE/);
    expect(() => queueStreamName("")).toThrow(/FOLLOWUP_QUEUE/);
  });

  it("gives the timer stream what the Nats-TTL/marker pattern needs", () => {
    const timers = topology().streams.timers;
    expect(timers.allowMsgTtl).toBe(true);
    expect(timers.maxMsgsPerSubject).toBe(1);
    expect(timers.subjectDeleteMarkerTtlMs).toBe(MARKER_TTL_MS);
    expect(MARKER_TTL_MS).toBeGreaterThanOrEqual(24 * 3600 * 1000);
    expect(timers.republish).toEqual({
      src: wildcards.followupTimer,
      dest: wildcards.followupFired,
      headersOnly: true,
    });
    expect(topology().streams.followups.retention).toBe("workqueue");
  });

  it("every subject the engine publishes durably is captured by exactly one stream", () => {
    const streams = Object.values(topology().streams);
    const published = [
      subjects.leadScored("t", "l"),
      subjects.leadOutcome("t", "l"),
      subjects.followupTimer("t", "l", 1),
      subjects.followupDue("t", "l", 1),
      subjects.followupResult("t", "l", 1),
      subjects.followupDead("t", "l", 1),
    ];
    const covers = (wildcard: string, subject: string) => subject.startsWith(wildcard.replace(/>$/, ""));
    for (const subject of published) {
      expect(streams.filter((s) => s.subjects.some((w) => covers(w, subject))).length, subject).toBe(1);
    }
    expect(streams.some((s) => s.subjects.some((w) => covers(w, subjects.followupFired("t", "l", 1))))).toBe(
      false,
    );
  });

  it("consumers read from streams that exist (a bucket's stream is one)", () => {
    const t = topology();
    const names = new Set([
      ...Object.values(t.streams).map((s) => s.name),
      ...Object.values(t.buckets).map((b) => bucketStream(b.bucket)),
    ]);
    for (const c of Object.values(t.consumers)) expect(names.has(c.stream), c.durable).toBe(true);
  });
});
