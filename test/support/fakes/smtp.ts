import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { waitFor } from "@followup/nats-harness";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer, type SMTPServerAddress } from "smtp-server";

/**
 * A real SMTP server (smtp-server) on 127.0.0.1 that receives each mail, parses it with
 * mailparser and records it. With `users` it requires AUTH (PLAIN or LOGIN) and refuses wrong
 * credentials with 535; recipients in `rejectRecipients` get 550 at RCPT TO; failures can be
 * scripted for the next mails (at RCPT TO or after DATA, any reply code). No TLS: it offers
 * neither STARTTLS nor SMTPS, and lets AUTH run in the clear, as a local test server.
 */

export interface SmtpUser {
  user: string;
  pass: string;
}

export interface ReceivedMail {
  receivedAt: number;
  /** The SMTP envelope: MAIL FROM and RCPT TO. */
  from: string;
  to: string[];
  /** Who authenticated, when AUTH was used. */
  user?: string;
  raw: string;
  parsed: ParsedMail;
}

export interface SmtpFailure {
  /** The reply code, e.g. 451 (transient) or 554 (permanent). */
  code: number;
  message?: string;
  at: "rcpt" | "data";
}

export interface SmtpTestServerOptions {
  /** Require AUTH with one of these; none: AUTH is not offered. */
  users?: SmtpUser[];
  rejectRecipients?: string[];
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export class SmtpTestServer {
  readonly mails: ReceivedMail[] = [];
  /** AUTH attempts refused. */
  authFailures = 0;
  readonly #server: SMTPServer;
  readonly #failures: SmtpFailure[] = [];
  #port = 0;

  constructor(options: SmtpTestServerOptions = {}) {
    const users = options.users ?? [];
    const rejected = new Set((options.rejectRecipients ?? []).map((a) => a.toLowerCase()));
    this.#server = new SMTPServer({
      secure: false,
      hideSTARTTLS: true,
      disabledCommands: users.length ? ["STARTTLS"] : ["STARTTLS", "AUTH"],
      authOptional: users.length === 0,
      allowInsecureAuth: true,
      authMethods: ["PLAIN", "LOGIN"],
      logger: false,
      size: 10 * 1024 * 1024,
      onAuth: (auth, _session, callback) => {
        if (users.some((u) => u.user === auth.username && u.pass === auth.password))
          return callback(null, { user: auth.username });
        this.authFailures++;
        callback(smtpError(535, "5.7.8 Authentication credentials invalid"));
      },
      onRcptTo: (address: SMTPServerAddress, _session, callback) => {
        const failure = this.#takeFailure("rcpt");
        if (failure) return callback(smtpError(failure.code, failure.message ?? "scripted failure"));
        if (rejected.has(address.address.toLowerCase()))
          return callback(
            smtpError(550, `5.1.1 <${address.address}>: Recipient address rejected: User unknown`),
          );
        callback();
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          const failure = this.#takeFailure("data");
          if (failure) return callback(smtpError(failure.code, failure.message ?? "scripted failure"));
          const raw = Buffer.concat(chunks);
          simpleParser(raw)
            .then((parsed) => {
              const from = session.envelope.mailFrom;
              this.mails.push({
                receivedAt: Date.now(),
                from: from ? from.address : "",
                to: session.envelope.rcptTo.map((r) => r.address),
                ...(typeof session.user === "string" ? { user: session.user } : {}),
                raw: raw.toString("utf8"),
                parsed,
              });
              callback(null, `2.0.0 Ok: queued as ${randomBytes(6).toString("hex").toUpperCase()}`);
            })
            .catch((err: unknown) => callback(smtpError(554, `5.6.0 unparseable message: ${String(err)}`)));
        });
      },
    });
  }

  get host(): string {
    return "127.0.0.1";
  }

  get port(): number {
    return this.#port;
  }

  /** The next `times` mails fail so, at RCPT TO or after DATA. */
  failNext(failure: SmtpFailure, times = 1): void {
    for (let i = 0; i < times; i++) this.#failures.push(failure);
  }

  async waitForMails(count: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.mails.length >= count, {
      description: `${count} mails received (have ${this.mails.length})`,
      timeoutMs,
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => resolve());
    });
    this.#port = (this.#server.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #takeFailure(at: SmtpFailure["at"]): SmtpFailure | undefined {
    const index = this.#failures.findIndex((f) => f.at === at);
    return index === -1 ? undefined : this.#failures.splice(index, 1)[0];
  }
}

/** A real SMTP server on 127.0.0.1 (`server.host`, `server.port`). */
export function startSmtpServer(options: SmtpTestServerOptions = {}): Promise<SmtpTestServer> {
  return new SmtpTestServer(options).listen();
}
