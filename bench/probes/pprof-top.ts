/**
 * The top functions of a Go CPU profile (pprof's gzipped protobuf, as nats-server's
 * `prof_port` serves it at /debug/pprof/profile), by their own time and by their inclusive
 * time, as shares of the profile's CPU. No Go toolchain needed: the profile names its own
 * functions. `burst-cpu.ts --server-profile FILE` writes one.
 *
 *   npx tsx bench/probes/pprof-top.ts FILE [--top N] [--match TEXT]
 *
 * `--match TEXT` lists only functions whose name contains TEXT (in the inclusive table too).
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const file = args[0];
const top = Number(option("--top") ?? 30);
const match = option("--match");
if (!file || file.startsWith("--") || !Number.isInteger(top) || top < 1) {
  console.error("usage: npx tsx bench/probes/pprof-top.ts FILE [--top N] [--match TEXT]");
  process.exit(2);
}

/** A protobuf message's fields in order: field number, wire type, and value (varint or bytes). */
type Field = { no: number; wire: number; value: bigint | Uint8Array };

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[at++];
      if (byte === undefined) throw new Error("a truncated varint: not a pprof profile");
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(at, at + len) });
      at += len;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`wire type ${wire}: not a pprof profile`);
  }
  return out;
}

/** A repeated integer field: packed (bytes of varints) or one varint per occurrence. */
function ints(all: Field[], no: number): bigint[] {
  const out: bigint[] = [];
  for (const f of all.filter((x) => x.no === no)) {
    if (typeof f.value === "bigint") out.push(f.value);
    else for (const inner of packed(f.value)) out.push(inner);
  }
  return out;
}

function packed(buf: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let at = 0;
  while (at < buf.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
    }
    out.push(result);
  }
  return out;
}

const int = (all: Field[], no: number) => Number(ints(all, no)[0] ?? 0n);

// `| head` closes the pipe early: stop quietly.
process.stdout.on("error", () => process.exit(0));

const raw = readFileSync(file);
const profile = fields(raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw);
const decoder = new TextDecoder();
const strings = profile.filter((f) => f.no === 6).map((f) => decoder.decode(f.value as Uint8Array));
const sampleTypes = profile
  .filter((f) => f.no === 1)
  .map((f) => strings[int(fields(f.value as Uint8Array), 1)] ?? "");
const valueAt = Math.max(0, sampleTypes.indexOf("cpu"));

const functionName = new Map<number, string>();
for (const f of profile.filter((x) => x.no === 5)) {
  const fn = fields(f.value as Uint8Array);
  functionName.set(int(fn, 1), strings[int(fn, 2)] ?? "?");
}
/** Each location's functions, innermost (inlined) first. */
const locationFunctions = new Map<number, string[]>();
for (const f of profile.filter((x) => x.no === 4)) {
  const loc = fields(f.value as Uint8Array);
  const names = loc
    .filter((x) => x.no === 4)
    .map((line) => functionName.get(int(fields(line.value as Uint8Array), 1)) ?? "?");
  locationFunctions.set(int(loc, 1), names.length > 0 ? names : [`0x${ints(loc, 3)[0]?.toString(16)}`]);
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
for (const f of profile.filter((x) => x.no === 2)) {
  const sample = fields(f.value as Uint8Array);
  const value = Number(ints(sample, 2)[valueAt] ?? 0n);
  const stack = ints(sample, 1).flatMap((id) => locationFunctions.get(Number(id)) ?? ["?"]);
  total += value;
  const leaf = stack[0] ?? "?";
  self.set(leaf, (self.get(leaf) ?? 0) + value);
  for (const name of new Set(stack)) inclusive.set(name, (inclusive.get(name) ?? 0) + value);
}
if (total === 0) {
  console.error(`${file}: no CPU samples`);
  process.exit(1);
}

const durationS = int(profile, 10) / 1e9;
console.log(
  `${file}: ${(total / 1e6).toFixed(0)} ms of CPU${durationS > 0 ? ` in ${durationS.toFixed(1)} s` : ""}`,
);
const print = (title: string, table: Map<string, number>) => {
  console.log(`\n${title}`);
  const rows = [...table.entries()]
    .filter(([name]) => match === undefined || name.includes(match))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  for (const [name, value] of rows) {
    console.log(
      `${((100 * value) / total).toFixed(1).padStart(6)}%  ${(value / 1e6).toFixed(0).padStart(6)} ms  ${name}`,
    );
  }
};
print("own time", self);
print("inclusive time", inclusive);
