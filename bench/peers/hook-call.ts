import { parseWebhookSecret, webhookHeaders } from "@followup/service-kit";
import { Pool } from "undici";

/**
 * How the peers' workers call the hook: the same work the engine's dispatcher does per
 * follow-up (a JSON body, a Standard Webhooks signature, a keep-alive undici pool of the same
 * size), so the burst comparison measures the timing machinery, not different HTTP clients.
 */
export interface PeerFollowup {
  tenant: string;
  lead_id: string;
  step: number;
  delay_s: number;
  due_at: string;
}

export interface HookCaller {
  /** Resolves once the hook answered 2xx; throws otherwise (the peer then retries it its own way). */
  call(followup: PeerFollowup, attempt: number): Promise<void>;
  close(): Promise<void>;
}

export function createHookCaller(options: { url: string; secret: string; connections: number }): HookCaller {
  const url = new URL(options.url);
  const key = parseWebhookSecret(options.secret);
  const pool = new Pool(url.origin, { connections: options.connections, pipelining: 1 });
  const path = `${url.pathname}${url.search}`;
  return {
    async call(followup, attempt) {
      const body = JSON.stringify({
        lead_id: followup.lead_id,
        strategy: `${followup.delay_s}s`,
        message: `Auto follow-up at +${followup.delay_s}s`,
        ts: new Date().toISOString(),
        tenant: followup.tenant,
        step: followup.step,
        due_at: followup.due_at,
        attempt,
      });
      const id = `${followup.tenant}:${followup.lead_id}:${followup.step}`;
      const response = await pool.request({
        path,
        method: "POST",
        headers: { "content-type": "application/json", ...webhookHeaders(key, id, body) },
        body,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      await response.body.dump();
      if (response.statusCode < 200 || response.statusCode >= 300) {
        throw new Error(`hook answered HTTP ${response.statusCode}`);
      }
    },
    async close() {
      await pool.close();
    },
  };
}

/** A fixed secret for the bench only: every system signs with it, nothing verifies it. */
export const BENCH_HOOK_SECRET = `whsec_${Buffer.from("bench-only-hook-secret-32-bytes!").toString("base64")}`;
