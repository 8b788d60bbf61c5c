import { gunzipSync } from "node:zlib";

/**
 * A Go CPU profile (pprof's protobuf, gzipped or not, as nats-server's `prof_port` serves it at
 * /debug/pprof/profile) summed by function: each function's own time (the innermost frame of a
 * sample, inlined frames included) and its inclusive time (counted once per sample it is on).
 * The profile names its own functions, so no Go toolchain is needed.
 */
export interface CpuProfileSummary {
  /** The CPU of every sample, in ns. */
  totalNs: number;
  /** The profile's duration, in ns (0 when it does not say). */
  durationNs: number;
  self: Map<string, number>;
  inclusive: Map<string, number>;
}

/** One protobuf field: its number and its value (a varint, or the bytes of a length-delimited one). */
type Field = { no: number; value: bigint | Uint8Array };

function readVarint(buf: Uint8Array, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const byte = buf[at++];
    if (byte === undefined) throw new Error("a truncated varint: not a pprof profile");
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, at];
    shift += 7n;
  }
}

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const [key, next] = readVarint(buf, at);
    at = next;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, after] = readVarint(buf, at);
      out.push({ no, value });
      at = after;
    } else if (wire === 2) {
      const [len, after] = readVarint(buf, at);
      out.push({ no, value: buf.subarray(after, after + Number(len)) });
      at = after + Number(len);
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`wire type ${wire}: not a pprof profile`);
  }
  return out;
}

/** A repeated integer field, packed (one length-delimited run of varints) or not. */
function ints(all: Field[], no: number): bigint[] {
  const out: bigint[] = [];
  for (const f of all) {
    if (f.no !== no) continue;
    if (typeof f.value === "bigint") {
      out.push(f.value);
      continue;
    }
    for (let at = 0; at < f.value.length; ) {
      const [value, next] = readVarint(f.value, at);
      out.push(value);
      at = next;
    }
  }
  return out;
}

const int = (all: Field[], no: number) => Number(ints(all, no)[0] ?? 0n);
const bytesOf = (f: Field) => (typeof f.value === "bigint" ? new Uint8Array() : f.value);

export function summarizeCpuProfile(raw: Uint8Array): CpuProfileSummary {
  const profile = fields(raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw);
  const decoder = new TextDecoder();
  const strings = profile.filter((f) => f.no === 6).map((f) => decoder.decode(bytesOf(f)));
  // Profile: 1 sample_type, 2 sample, 4 location, 5 function, 6 string_table, 10 duration_nanos.
  const sampleTypes = profile.filter((f) => f.no === 1).map((f) => strings[int(fields(bytesOf(f)), 1)] ?? "");
  const valueAt = Math.max(0, sampleTypes.indexOf("cpu"));

  const functionName = new Map<number, string>();
  for (const f of profile.filter((x) => x.no === 5)) {
    const fn = fields(bytesOf(f));
    functionName.set(int(fn, 1), strings[int(fn, 2)] ?? "?");
  }
  // Each location's functions, innermost (inlined) first; an unsymbolized one by its address.
  const locationFunctions = new Map<number, string[]>();
  for (const f of profile.filter((x) => x.no === 4)) {
    const loc = fields(bytesOf(f));
    const names = loc
      .filter((x) => x.no === 4)
      .map((line) => functionName.get(int(fields(bytesOf(line)), 1)) ?? "?");
    locationFunctions.set(
      int(loc, 1),
      names.length > 0 ? names : [`0x${(ints(loc, 3)[0] ?? 0n).toString(16)}`],
    );
  }

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalNs = 0;
  for (const f of profile.filter((x) => x.no === 2)) {
    const sample = fields(bytesOf(f));
    const value = Number(ints(sample, 2)[valueAt] ?? 0n);
    const stack = ints(sample, 1).flatMap((id) => locationFunctions.get(Number(id)) ?? ["?"]);
    totalNs += value;
    const leaf = stack[0] ?? "?";
    self.set(leaf, (self.get(leaf) ?? 0) + value);
    for (const name of new Set(stack)) inclusive.set(name, (inclusive.get(name) ?? 0) + value);
  }
  return { totalNs, durationNs: int(profile, 10), self, inclusive };
}
