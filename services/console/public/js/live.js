import { apiKey } from "./api.js";

/**
 * Follows a lead's server-sent events (`/console/live/lead/:id`). Read with fetch rather than
 * EventSource, which cannot send the x-api-key header. `onChange` is called once the
 * subscription is live (`ready`) and on every event of the lead; a dropped stream is opened again.
 * @returns {{ close(): void }}
 */
export function followLead(leadId, onChange, onState = () => {}) {
  let closed = false;
  let controller = new AbortController();
  let retryMs = 1000;

  const open = async () => {
    controller = new AbortController();
    try {
      const res = await fetch(`/console/live/lead/${encodeURIComponent(leadId)}`, {
        headers: { "x-api-key": apiKey() ?? "", accept: "text/event-stream" },
        signal: controller.signal,
      });
      if (!res.ok || !res.body) {
        onState(`live updates unavailable (${res.status})`);
        if (res.status === 404 || res.status === 401) return;
        throw new Error(String(res.status));
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const events = buffered.split("\n\n");
        buffered = events.pop() ?? "";
        for (const block of events) {
          const name = /^event: (.*)$/m.exec(block)?.[1];
          if (name === "ready") {
            retryMs = 1000;
            onState("live");
            onChange({ kind: "ready" });
          } else if (name === "lead") {
            const data = /^data: (.*)$/m.exec(block)?.[1];
            onChange(data ? JSON.parse(data) : {});
          }
        }
      }
      throw new Error("stream ended");
    } catch {
      if (closed) return;
      onState("reconnecting");
      setTimeout(() => {
        if (!closed) void open();
      }, retryMs);
      retryMs = Math.min(retryMs * 2, 15_000);
    }
  };
  void open();
  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}
