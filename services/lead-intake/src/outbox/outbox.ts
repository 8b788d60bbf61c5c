import { join } from "node:path";
import {
  isValidToken,
  type LeadScored,
  LeadScored as LeadScoredSchema,
  type StoredLead,
  StoredLead as StoredLeadSchema,
} from "@followup/contracts";
import { z } from "zod";
import {
  DirectorySync,
  ensureDirectory,
  listDirectory,
  readText,
  removeFile,
  removeIfEmpty,
  renameFile,
  writeFileDurably,
} from "./files.js";
import { releaseOutboxLock, takeOutboxLock } from "./lock.js";

/**
 * The durable local outbox: leads accepted while JetStream could not take them, kept on disk
 * until they are stored and published, in the order they were accepted.
 *
 * One file per lead, named `<seq>.<tenant>.<leadId>.json` with a 12-digit sequence that only
 * grows, so the directory listing is the queue in acceptance order and the index is rebuilt
 * from names alone. A lead is written to a temp name, fsync'd, renamed into place and the
 * directory fsync'd before `append` resolves (and so before the caller answers 202): a lead that
 * was acknowledged survives a kill -9 or a power failure. A temp file found at start was never
 * acknowledged and is deleted. Removal after publishing needs no fsync: a removal lost to a
 * crash only publishes the lead again, which is idempotent (see docs/reliability.md).
 */

export const OUTBOX_ENTRY_VERSION = 1;
const SEQ_DIGITS = 12;
const ENTRY_NAME = /^(\d{12})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})\.json$/;
const TEMP_SUFFIX = ".tmp";
const UNREADABLE_SUFFIX = ".unreadable";

/** What one outbox file holds. */
export const OutboxEntry = z.object({
  version: z.literal(OUTBOX_ENTRY_VERSION),
  seq: z.number().int().min(1),
  queued_at: z.iso.datetime(),
  lead: StoredLeadSchema,
  event: LeadScoredSchema,
});
export type OutboxEntry = { version: 1; seq: number; queued_at: string; lead: StoredLead; event: LeadScored };

/** The file name of an entry: pure, so the order and the index come from names alone. */
export function entryFileName(seq: number, tenant: string, leadId: string): string {
  if (!Number.isInteger(seq) || seq < 1 || seq >= 10 ** SEQ_DIGITS) throw new Error(`bad outbox seq ${seq}`);
  if (!isValidToken(tenant) || !isValidToken(leadId)) throw new Error("bad tenant or lead id for the outbox");
  return `${String(seq).padStart(SEQ_DIGITS, "0")}.${tenant}.${leadId}.json`;
}

/** The parts of an entry's file name, or null when the name is not one (temp files, the lock). */
export function parseEntryFileName(name: string): { seq: number; tenant: string; leadId: string } | null {
  const match = ENTRY_NAME.exec(name);
  if (!match) return null;
  const seq = Number(match[1]);
  if (seq < 1) return null;
  return { seq, tenant: match[2] as string, leadId: match[3] as string };
}

/** The outbox holds OUTBOX_MAX_LEADS leads already: intake answers 503 instead of losing one. */
export class OutboxFullError extends Error {
  constructor(readonly capacity: number) {
    super(`the local outbox is full (${capacity} leads, OUTBOX_MAX_LEADS)`);
    this.name = "OutboxFullError";
  }
}

/** One queued lead: its place in the queue, and a promise that settles once it is durable. */
export interface OutboxSlot {
  readonly seq: number;
  readonly tenant: string;
  readonly leadId: string;
  readonly file: string;
  /** Resolves when the entry is on disk; rejects when writing it failed (it is then gone). */
  readonly written: Promise<void>;
  /** Whether `written` has resolved: the entry is on disk. */
  durable: boolean;
}

export interface OutboxOpenOptions {
  dir: string;
  maxLeads: number;
  now?: () => Date;
}

/**
 * The outbox of one lead-intake process. Appends may run concurrently; the sequence is taken
 * synchronously, so the queue order is the order in which `append` was called.
 */
export class LeadOutbox {
  readonly dir: string;
  readonly capacity: number;
  readonly #now: () => Date;
  readonly #dirSync: DirectorySync;
  /** Every slot, reserved or written, in seq order (a Map keeps insertion order). */
  readonly #slots = new Map<number, OutboxSlot>();
  readonly #byLead = new Map<string, OutboxSlot>();
  #nextSeq: number;
  #closed = false;

  private constructor(options: OutboxOpenOptions, existing: OutboxSlot[]) {
    this.dir = options.dir;
    this.capacity = options.maxLeads;
    this.#now = options.now ?? (() => new Date());
    this.#dirSync = new DirectorySync(options.dir);
    for (const slot of existing) this.#index(slot);
    this.#nextSeq = (existing.at(-1)?.seq ?? 0) + 1;
  }

  /**
   * Opens (creating it if needed) the outbox in `dir`: takes the lock, deletes temp files of
   * writes that were never acknowledged, and indexes the entries left by an earlier run.
   */
  static async open(options: OutboxOpenOptions): Promise<{ outbox: LeadOutbox; removedTemp: number }> {
    await ensureDirectory(options.dir);
    await takeOutboxLock(options.dir);
    const names = await listDirectory(options.dir);
    let removedTemp = 0;
    const existing: OutboxSlot[] = [];
    for (const name of names) {
      if (name.endsWith(TEMP_SUFFIX)) {
        await removeFile(join(options.dir, name));
        removedTemp++;
        continue;
      }
      const parsed = parseEntryFileName(name);
      if (parsed === null) continue;
      existing.push({ ...parsed, file: join(options.dir, name), written: Promise.resolve(), durable: true });
    }
    existing.sort((a, b) => a.seq - b.seq);
    return { outbox: new LeadOutbox(options, existing), removedTemp };
  }

  /** Leads queued (written or being written). */
  get depth(): number {
    return this.#slots.size;
  }

  /** The oldest queued lead, the next to publish; undefined when empty. */
  head(): OutboxSlot | undefined {
    return this.#slots.values().next().value;
  }

  /**
   * Up to `max` of the oldest leads, in order, as far as they are on disk: a lead still being
   * written ends the batch, so a batch never skips ahead of one.
   */
  headBatch(max: number): OutboxSlot[] {
    const batch: OutboxSlot[] = [];
    for (const slot of this.#slots.values()) {
      if (!slot.durable || batch.length >= max) break;
      batch.push(slot);
    }
    return batch;
  }

  /** Whether the tenant's lead is queued here. */
  holds(tenant: string, leadId: string): boolean {
    return this.#byLead.has(`${tenant}.${leadId}`);
  }

  /** The queued entry of the tenant's lead, or null when it is not here. */
  async find(tenant: string, leadId: string): Promise<OutboxEntry | null> {
    const slot = this.#byLead.get(`${tenant}.${leadId}`);
    if (slot === undefined) return null;
    await slot.written;
    return this.read(slot);
  }

  /**
   * Queues a lead durably: resolves once it is on disk (fsync'd file, fsync'd directory).
   * Throws OutboxFullError at capacity, or the file system's error (nothing is then queued).
   */
  async append(lead: StoredLead, event: LeadScored): Promise<OutboxSlot> {
    if (this.#closed) throw new Error("the outbox is closed");
    if (this.#slots.size >= this.capacity) throw new OutboxFullError(this.capacity);
    const seq = this.#nextSeq++;
    const name = entryFileName(seq, lead.tenant, lead.lead_id);
    const file = join(this.dir, name);
    const entry: OutboxEntry = {
      version: OUTBOX_ENTRY_VERSION,
      seq,
      queued_at: this.#now().toISOString(),
      lead,
      event,
    };
    const written = (async () => {
      const temp = `${file}${TEMP_SUFFIX}`;
      await writeFileDurably(temp, JSON.stringify(entry));
      await renameFile(temp, file);
      // The rename is durable once the directory is: concurrent appends share one fsync.
      await this.#dirSync.sync();
    })();
    const slot: OutboxSlot = {
      seq,
      tenant: lead.tenant,
      leadId: lead.lead_id,
      file,
      written,
      durable: false,
    };
    this.#index(slot);
    try {
      await written;
      slot.durable = true;
    } catch (err) {
      this.#forget(slot);
      await removeFile(`${file}${TEMP_SUFFIX}`).catch(() => {});
      await removeFile(file).catch(() => {});
      throw err;
    }
    return slot;
  }

  /** Reads and checks a written entry; throws when the file does not hold one. */
  async read(slot: OutboxSlot): Promise<OutboxEntry> {
    const parsed = OutboxEntry.safeParse(JSON.parse(await readText(slot.file)));
    if (!parsed.success || parsed.data.seq !== slot.seq || parsed.data.lead.lead_id !== slot.leadId) {
      throw new Error(`outbox entry ${slot.file} does not hold the lead its name says`);
    }
    return parsed.data as OutboxEntry;
  }

  /** Removes a published entry. */
  async remove(slot: OutboxSlot): Promise<void> {
    // No fsync: a removal a crash undoes only publishes the lead again, which is idempotent.
    await removeFile(slot.file);
    this.#forget(slot);
  }

  /**
   * Moves an entry that cannot be read aside (`.unreadable`, kept for an operator) so it does
   * not block the leads behind it.
   */
  async setAside(slot: OutboxSlot): Promise<string> {
    const target = `${slot.file}${UNREADABLE_SUFFIX}`;
    await renameFile(slot.file, target);
    this.#forget(slot);
    return target;
  }

  /**
   * Releases the lock. Queued entries stay on disk for the next start; an empty outbox leaves
   * no directory behind (copies started on passing ports would otherwise litter `.data/`).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await releaseOutboxLock(this.dir);
    if (this.#slots.size === 0) await removeIfEmpty(this.dir);
  }

  #index(slot: OutboxSlot): void {
    this.#slots.set(slot.seq, slot);
    this.#byLead.set(`${slot.tenant}.${slot.leadId}`, slot);
  }

  #forget(slot: OutboxSlot): void {
    this.#slots.delete(slot.seq);
    if (this.#byLead.get(`${slot.tenant}.${slot.leadId}`) === slot) {
      this.#byLead.delete(`${slot.tenant}.${slot.leadId}`);
    }
  }
}
