import { z } from "zod";
import {
  EnrolmentAccepted,
  EnrolRequest,
  ErrorEnvelope,
  HookAck,
  HookPayload,
  LeadAccepted,
  LeadView,
  OutcomeAccepted,
  QueueStatus,
} from "./api.js";
import {
  ChannelList,
  ChannelSettingsRecord,
  ChannelView,
  EmailSettings,
  HookSettings,
  SlackSettings,
  SmsSettings,
} from "./channels.js";
import { EVENT_SCHEMAS } from "./events.js";
import { LeadRequest, OutcomeRequest, StoredLead } from "./lead.js";
import { ModelPointer, ModelRecord, ModelRolledBack, ModelStatus } from "./models.js";
import { FollowupPlan, HookReceipt } from "./records.js";
import { SequenceReport, StepsReport } from "./reports.js";
import { Sequence, SequenceList, SequenceRecord, SequenceView } from "./sequences.js";
import { SuppressionList, SuppressionRecord, SuppressionRequest, SuppressionView } from "./suppressions.js";
import { RenderedMessage, Template, TemplateList, TemplateRecord, TemplateView } from "./templates.js";

/** Every schema that is a contract of record, by the file name its JSON Schema is written to. */
export const CONTRACTS_OF_RECORD: Record<string, z.ZodType> = {
  ...EVENT_SCHEMAS,
  LeadRequest,
  OutcomeRequest,
  StoredLead,
  FollowupPlan,
  HookReceipt,
  Sequence,
  SequenceRecord,
  SequenceView,
  SequenceList,
  Template,
  TemplateRecord,
  TemplateView,
  TemplateList,
  RenderedMessage,
  SmsSettings,
  EmailSettings,
  SlackSettings,
  HookSettings,
  ChannelSettingsRecord,
  ChannelView,
  ChannelList,
  SuppressionRecord,
  SuppressionRequest,
  SuppressionView,
  SuppressionList,
  HookPayload,
  HookAck,
  LeadAccepted,
  LeadView,
  OutcomeAccepted,
  EnrolRequest,
  EnrolmentAccepted,
  QueueStatus,
  SequenceReport,
  StepsReport,
  ModelRecord,
  ModelPointer,
  ModelStatus,
  ModelRolledBack,
  ErrorEnvelope,
};

/**
 * JSON Schema (draft 2020-12) of every contract of record, for consumers not written in
 * TypeScript. `io: "input"` describes what a producer may send (defaults are optional).
 */
export function jsonSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(CONTRACTS_OF_RECORD)) {
    const json = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" });
    out[`${name}.schema.json`] = `${JSON.stringify(json, null, 2)}\n`;
  }
  return out;
}
