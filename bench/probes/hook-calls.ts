/**
 * The least time `count` hook calls take on this machine: the same client the dispatcher and
 * the peers' workers use (an undici pool, Standard Webhooks signature, HOOK_CONCURRENCY calls in
 * flight) posting follow-ups to HOOK_URL, with no broker and no timing machinery at all. Run as
 * its own process, like the dispatcher. Prints one line: `hook-calls <count> in <ms> ms`, from
 * the first call to the last 2xx.
 *
 *   HOOK_URL=... HOOK_SECRET=whsec_... HOOK_CONCURRENCY=32 npx tsx bench/probes/hook-calls.ts [count=20000]
 *
 * (The bench passes the count as HOOK_CALLS.)
 */
import { peerFollowup } from "../followups.js";
import { createHookCaller } from "../peers/hook-call.js";
import { inWindow } from "../window.js";

const countArg = process.argv[2] ?? process.env.HOOK_CALLS ?? "20000";
const count = Number(countArg);
if (!(Number.isInteger(count) && count > 0))
  throw new Error(`count: expected a positive integer, got ${countArg}`);
const concurrency = Number(process.env.HOOK_CONCURRENCY ?? 32);
const hook = createHookCaller({
  url: process.env.HOOK_URL ?? "",
  secret: process.env.HOOK_SECRET ?? "",
  connections: concurrency,
});
try {
  const dueAtMs = Date.now();
  const ms = await inWindow(count, concurrency, (i) => hook.call(peerFollowup(i, 1, 0, dueAtMs), 1));
  console.log(`hook-calls ${count} in ${ms.toFixed(1)} ms`);
} finally {
  await hook.close();
}
