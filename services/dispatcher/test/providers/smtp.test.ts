import { createServer, type Socket } from "node:net";
import { readUnsubscribeToken, verifyUnsubscribeToken } from "@followup/service-kit";
import { type SmtpTestServer, startSmtpServer } from "@followup/system-tests/support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpClient, type SmtpSettings } from "../../src/channels/email/smtp.js";
import type { ProviderAnswer } from "../../src/channels/provider/answer.js";
import { emailMessage, LEAD, tokenOf, UNSUBSCRIBE_SECRET } from "./email-fixtures.js";

const PASS = "smtp-pass-0123456789-secret";
const lead = LEAD;
const message = emailMessage;

let server: SmtpTestServer;
let open: SmtpTestServer;
const client = new SmtpClient({ timeoutMs: 3_000 });

beforeAll(async () => {
  server = await startSmtpServer({
    users: [{ user: "acme", pass: PASS }],
    rejectRecipients: ["gone@example.com"],
  });
  open = await startSmtpServer();
});

afterAll(async () => {
  await client.close();
  await server?.close();
  await open?.close();
});

function settings(extra: Partial<SmtpSettings> = {}): SmtpSettings {
  return {
    provider: "smtp",
    host: server.host,
    port: server.port,
    secure: false,
    user: "acme",
    pass: PASS,
    from: "sales@acme.example",
    ...extra,
  };
}

function expectNoSecret(answer: ProviderAnswer): void {
  expect(JSON.stringify(answer)).not.toContain(PASS);
}

describe("the SMTP client against a real SMTP server", () => {
  it("delivers the message with AUTH, keeps the Message-ID and carries RFC 8058 one-click headers", async () => {
    const before = server.mails.length;
    const answer = await client.send(settings({ from_name: "Acme Sales" }), message());
    expect(answer).toMatchObject({ classification: { kind: "delivered" }, statusCode: 250 });
    expectNoSecret(answer);
    await server.waitForMails(before + 1);
    const mail = server.mails.at(-1)!;
    expect(mail.user).toBe("acme");
    expect(mail.from).toBe("sales@acme.example");
    expect(mail.to).toEqual(["ada@example.com"]);
    expect(answer.providerMessageId).toBe(mail.parsed.messageId);
    expect(mail.parsed.subject).toBe("Your quote");
    expect(mail.parsed.from?.value).toEqual([{ address: "sales@acme.example", name: "Acme Sales" }]);
    expect(mail.parsed.text?.trim()).toBe("Hi Ada, here is your quote.");
    expect(mail.parsed.html).toContain("<b>quote</b>");

    // mailparser reads List-Unsubscribe into the `list` header; the raw headers show both exactly.
    const raw = mail.parsed.headerLines.map((h) => h.line.replace(/\r?\n\s+/g, " "));
    const listUnsubscribe = raw.find((line) => /^list-unsubscribe:/i.test(line));
    expect(listUnsubscribe).toMatch(/^List-Unsubscribe: <https:\/\/engine\.example\/u\/[^>]+>$/);
    expect(raw).toContain("List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    const list = mail.parsed.headers.get("list") as { unsubscribe?: { url?: string } } | undefined;
    const url = list?.unsubscribe?.url;
    expect(url).toBeDefined();
    const token = tokenOf(url!);
    expect(readUnsubscribeToken(token)).toEqual({ tenant: "acme", leadId: "L-7" });
    expect(verifyUnsubscribeToken(UNSUBSCRIBE_SECRET, token, lead)).toBe(true);
    expect(mail.raw).not.toContain(PASS);
  });

  it("sends without AUTH to a relay that does not ask for it", async () => {
    const answer = await client.send(
      { provider: "smtp", host: open.host, port: open.port, secure: false, from: "sales@acme.example" },
      message({ html: undefined }),
    );
    expect(answer.classification).toEqual({ kind: "delivered" });
    expect(open.mails.at(-1)!.user).toBeUndefined();
  });

  it("takes refused credentials (535) as permanent, never showing the password", async () => {
    const wrong = "wrong-pass-0123456789";
    const failuresBefore = server.authFailures;
    const answer = await client.send(settings({ pass: wrong }), message());
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 535,
      permanentReason: "unauthorized",
    });
    expect(server.authFailures).toBe(failuresBefore + 1);
    expect(JSON.stringify(answer)).not.toContain(wrong);
    expectNoSecret(answer);
  });

  it("takes a refused recipient (550 at RCPT TO) as a permanent invalid recipient", async () => {
    const answer = await client.send(settings(), message({ to: "gone@example.com" }));
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 550,
      permanentReason: "invalid_recipient",
    });
    expect(answer.error).toMatch(/^smtp: reply 550: /);
    expectNoSecret(answer);
  });

  it("retries a transient refusal (451 after DATA) and a permanent one (554) is not", async () => {
    server.failNext({ code: 451, message: "4.3.0 try again later", at: "data" });
    const transient = await client.send(settings(), message());
    expect(transient).toMatchObject({
      classification: { kind: "retry", reason: "smtp_4xx" },
      statusCode: 451,
    });
    server.failNext({ code: 554, message: "5.7.1 message refused", at: "data" });
    const refused = await client.send(settings(), message());
    expect(refused).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 554,
      permanentReason: "rejected",
    });
    expect((await client.send(settings(), message())).classification).toEqual({ kind: "delivered" });
  });

  it("retries when the relay cannot be reached", async () => {
    const answer = await client.send(settings({ port: 9 }), message());
    expect(answer).toMatchObject({ classification: { kind: "retry" }, statusCode: null });
    expect(answer.error).toMatch(/^smtp: /);
    expectNoSecret(answer);
  });

  it("times out on a relay that never greets, within the client's deadline", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket)); // accepts, never says 220
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const quick = new SmtpClient({ timeoutMs: 300 });
    try {
      const started = Date.now();
      const answer = await quick.send(settings({ port }), message());
      expect(answer).toEqual({
        classification: { kind: "retry", reason: "timeout" },
        statusCode: null,
        error: "smtp: timeout: no response within 300 ms",
      });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("refuses bad settings and a mail without an unsubscribe URL without connecting", async () => {
    const before = server.mails.length;
    const noPass = await client.send(settings({ pass: undefined }), message());
    expect(noPass).toMatchObject({ permanentReason: "invalid_settings" });
    expect(noPass.error).toMatch(/settings\.pass: expected user and pass together/);
    const noUnsubscribe = await client.send(settings(), message({ unsubscribeUrl: undefined }));
    expect(noUnsubscribe).toMatchObject({ permanentReason: "invalid_message", statusCode: null });
    expect(server.mails.length).toBe(before);
  });
});
