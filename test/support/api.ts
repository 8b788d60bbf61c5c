import type {
  LeadAccepted,
  LeadRequest,
  LeadView,
  Outcome,
  OutcomeAccepted,
  QueueStatus,
} from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";

/** An HTTP answer: the status, the headers and the body (parsed JSON, or the text when it is not JSON). */
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** The reference leads of the system this replaces: one scored above 0.70, one below. */
export const REFERENCE_LEADS = {
  high: {
    name: "Alex Rivera",
    phone: "+1-555-0199",
    details: "Urgent: Need to book immediately for tomorrow morning. Budget $5000, credit card ready.",
  },
  low: {
    name: "Bob Smith",
    phone: "+1-555-0100",
    details: "Just browsing, not sure what I want.",
  },
} as const satisfies Record<string, Partial<LeadRequest>>;

/**
 * lead-intake's HTTP API, with `x-api-key` on every call. The typed helpers throw (with the
 * status and body) unless the answer is a success; `request` returns whatever came back.
 */
export class ApiClient {
  constructor(
    /** `http://127.0.0.1:<port>` of a lead-intake. */
    readonly baseUrl: string,
    readonly apiKey: string,
  ) {}

  /** Another client for the same lead-intake with another key (another tenant, or a wrong key). */
  withKey(apiKey: string): ApiClient {
    return new ApiClient(this.baseUrl, apiKey);
  }

  /** Any call; `body` is sent as JSON unless it is a string. Headers override the defaults. */
  async request<T = unknown>(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { "x-api-key": this.apiKey, ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, ...(body ? { body } : {}) });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed as T };
  }

  /** GET /v1/lead/:id until `ready` holds (then its view), or throws `description` at the deadline. */
  async leadWhere(
    leadId: string,
    ready: (view: LeadView) => boolean,
    description: string,
    timeoutMs = 15_000,
  ): Promise<LeadView> {
    return waitFor(
      async () => {
        const view = await this.getLead(leadId);
        return ready(view) && view;
      },
      { description, timeoutMs, intervalMs: 100 },
    );
  }

  /** POST /v1/lead; resolves with `data`. */
  async postLead(lead: Partial<LeadRequest> = REFERENCE_LEADS.high): Promise<LeadAccepted> {
    return this.#data<LeadAccepted>("POST", "/v1/lead", lead);
  }

  /** GET /v1/lead/:id; resolves with `data` (the lead view). */
  async getLead(leadId: string): Promise<LeadView> {
    return this.#data<LeadView>("GET", `/v1/lead/${encodeURIComponent(leadId)}`);
  }

  /** POST /v1/lead/:id/outcome; resolves with `data`. */
  async recordOutcome(leadId: string, outcome: Outcome, notes?: string): Promise<OutcomeAccepted> {
    return this.#data<OutcomeAccepted>("POST", `/v1/lead/${encodeURIComponent(leadId)}/outcome`, {
      outcome,
      ...(notes !== undefined ? { notes } : {}),
    });
  }

  /** GET /ops/followup/queue (its body is the status itself, without an envelope). */
  async queueStatus(): Promise<QueueStatus> {
    const response = await this.request<QueueStatus>("GET", "/ops/followup/queue");
    if (response.status !== 200) throw failed("GET /ops/followup/queue", response);
    return response.body;
  }

  /** GET /ops/dead-letters; resolves with `data`. */
  async deadLetters(query: { lead_id?: string; step?: number; limit?: number } = {}) {
    const search = new URLSearchParams(
      Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
    return this.#data<{ count: number; dead_letters: { seq: number; subject: string; event: unknown }[] }>(
      "GET",
      `/ops/dead-letters${search ? `?${search}` : ""}`,
    );
  }

  /** POST /ops/dead-letters/replay; resolves with `data`. */
  async replayDeadLetters(filter: { lead_id?: string; step?: number } = {}) {
    return this.#data<{ replayed: number; more: boolean; items: { lead_id: string; step: number }[] }>(
      "POST",
      "/ops/dead-letters/replay",
      filter,
    );
  }

  async #data<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request<{ ok: boolean; data: T }>(method, path, {
      ...(body !== undefined ? { body } : {}),
    });
    if (response.status < 200 || response.status >= 300 || response.body?.ok !== true) {
      throw failed(`${method} ${path}`, response);
    }
    return response.body.data;
  }
}

function failed(call: string, response: ApiResponse): Error {
  return new Error(`${call} answered ${response.status}: ${JSON.stringify(response.body).slice(0, 500)}`);
}
