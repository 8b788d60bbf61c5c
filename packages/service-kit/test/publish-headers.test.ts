import { Match, type MsgHdrs, MsgHdrsImpl } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { PublishHeaders } from "../src/publish-headers.js";

// PublishHeaders must send exactly what nats.js's own headers send for the same calls: each
// case runs the same steps on both and compares the encoded block and what reads return.

type Step = (h: MsgHdrs) => void;
const append =
  (k: string, v: string, match?: Match): Step =>
  (h) =>
    h.append(k, v, match);

const cases: { name: string; steps: Step[] }[] = [
  { name: "nothing appended", steps: [] },
  {
    name: "a timer in a batch, committed",
    steps: [
      append("Nats-Msg-Id", "lead-1:1"),
      append("Nats-TTL", "3599"),
      append("Nats-Expected-Last-Subject-Sequence", "0"),
      append("Nats-Batch-Id", "b7Xq2"),
      append("Nats-Batch-Sequence", "1000"),
      append("Nats-Batch-Commit", "1"),
    ],
  },
  {
    name: "a value with surrounding spaces",
    steps: [append("Nats-Msg-Id", "  a:1 "), append("Nats-TTL", "5")],
  },
  { name: "a key appended twice", steps: [append("Nats-Batch-Id", "x"), append("Nats-Batch-Id", "y")] },
  { name: "another key first", steps: [append("X-Trace", "t1"), append("Nats-Msg-Id", "a:1")] },
  { name: "another key after", steps: [append("Nats-Msg-Id", "a:1"), append("X-Trace", "t1")] },
  { name: "a key in other case", steps: [append("nats-msg-id", "a:1"), append("Nats-TTL", "5")] },
  {
    name: "a key matched case-insensitively",
    steps: [append("Nats-Msg-Id", "a:1"), append("NATS-MSG-ID", "b:2", Match.IgnoreCase)],
  },
  { name: "set after append", steps: [append("Nats-TTL", "5"), (h) => h.set("Nats-TTL", "7")] },
  {
    name: "delete after append",
    steps: [append("Nats-Msg-Id", "a:1"), append("Nats-TTL", "5"), (h) => h.delete("Nats-Msg-Id")],
  },
  {
    name: "delete, then append again",
    steps: [append("Nats-TTL", "5"), (h) => h.delete("Nats-TTL"), append("Nats-TTL", "6")],
  },
];

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("PublishHeaders", () => {
  it.each(cases)("encodes as nats.js does: $name", ({ steps }) => {
    const ours = new PublishHeaders();
    const theirs = new MsgHdrsImpl();
    for (const step of steps) {
      step(ours);
      step(theirs);
    }
    expect(text(ours.encode())).toBe(text(theirs.encode()));
    expect(ours.keys()).toEqual(theirs.keys());
    for (const key of theirs.keys()) expect(ours.values(key)).toEqual(theirs.values(key));
  });

  it("writes the header block of a batch's timer in the order appended", () => {
    const h = new PublishHeaders();
    h.append("Nats-Msg-Id", "lead-1:2");
    h.append("Nats-TTL", "60");
    h.append("Nats-Batch-Sequence", "3");
    expect(text(h.encode())).toBe(
      "NATS/1.0\r\nNats-Msg-Id: lead-1:2\r\nNats-TTL: 60\r\nNats-Batch-Sequence: 3\r\n\r\n",
    );
    expect(h.get("Nats-TTL")).toBe("60");
  });

  it("refuses a value with a line break as nats.js does, and keeps what it held", () => {
    for (const value of ["a\r\nNats-TTL: 1", "a\nb"]) {
      const h = new PublishHeaders();
      h.append("Nats-Msg-Id", "a:1");
      expect(() => h.append("Nats-TTL", value)).toThrow(/cannot contain/);
      expect(() => new MsgHdrsImpl().append("Nats-TTL", value)).toThrow(/cannot contain/);
      expect(text(h.encode())).toBe("NATS/1.0\r\nNats-Msg-Id: a:1\r\n\r\n");
    }
  });
});
