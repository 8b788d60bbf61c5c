import { z } from "zod";
import { Token } from "./lead.js";
import { namedRecordSchemas } from "./named-records.js";
import { KnownChannel, SequenceName } from "./sequences.js";
import { assertToken } from "./subjects.js";

/**
 * Message templates: what a sequence step's channel sends, in Liquid, in the `templates` KV
 * bucket under `<tenant>.<name>`. lead-intake checks and previews them; the dispatcher renders
 * them at delivery from the lead in KV (`@followup/messages` holds the one Liquid setup).
 */

/**
 * The most templates a tenant may have. A listing is one direct get of the last value of each
 * key, at most 1024 keys; this keeps far below that, and leaves room for two steps' worth of
 * templates for each of a tenant's 100 sequences.
 */
export const MAX_TEMPLATES_PER_TENANT = 200;

/** The longest Liquid source of one field (the request body limit usually bites first). */
export const TEMPLATE_SOURCE_MAX = 50_000;
/** The longest subject source: a subject is one line. */
export const TEMPLATE_SUBJECT_MAX = 998;

/** A template's name: the rule of a sequence's name, which a step's `template` names. */
export const TemplateName = SequenceName;
export type TemplateName = z.infer<typeof TemplateName>;

function source(max: number) {
  return z
    .string("must be Liquid source text")
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`);
}

/** Subject and html belong to e-mail only: a channel without them would drop them silently. */
function checkChannelFields(
  template: { channel: string; subject?: string | undefined; html?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (template.channel === "email") {
    if (template.subject === undefined) {
      ctx.addIssue({ code: "custom", path: ["subject"], message: "is required for an email template" });
    }
    return;
  }
  for (const field of ["subject", "html"] as const) {
    if (template[field] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `is only for email templates, not ${template.channel}`,
      });
    }
  }
}

function templateShape() {
  return {
    channel: KnownChannel,
    /** E-mail only (required there). */
    subject: source(TEMPLATE_SUBJECT_MAX).optional(),
    /** The text: the SMS, the Slack message, the e-mail's text part, the hook's message. */
    body: source(TEMPLATE_SOURCE_MAX),
    /** E-mail only: the HTML part, whose every output is HTML-escaped. */
    html: source(TEMPLATE_SOURCE_MAX).optional(),
  };
}

/** A template as the issue that introduced them shows one: the example of the API documents. */
export const TEMPLATE_EXAMPLE = {
  channel: "sms",
  body: 'Hi {{ lead.first_name | default: "there" }}, thanks for getting in touch. When suits you for a call?',
} as const;

/** Body of `PUT /v1/templates/:name`. */
export const Template = z
  .strictObject(templateShape())
  .superRefine(checkChannelFields)
  .meta({
    id: "Template",
    description: "Body of PUT /v1/templates/:name",
    examples: [TEMPLATE_EXAMPLE],
  });
export type Template = z.output<typeof Template>;

/** A template as stored in the `templates` KV bucket under `<tenant>.<name>`. */
export const TemplateRecord = z
  .looseObject({ ...templateShape(), tenant: Token, name: TemplateName, updated_at: z.iso.datetime() })
  .meta({ id: "TemplateRecord", description: "Value of a template in the templates KV bucket" });
export type TemplateRecord = z.output<typeof TemplateRecord>;

/** A record as read from the bucket, with the KV revision it was read at (for If-Match). */
export type StoredTemplate = TemplateRecord & { revision: number };

/** The key of a tenant's template in the `templates` bucket. */
export function templateKey(tenant: string, name: string): string {
  return `${assertToken("tenant", tenant)}.${TemplateName.parse(name)}`;
}

const TEMPLATE_API = namedRecordSchemas("Template", "templates", TemplateName, TemplateRecord.shape);

/** `/v1/templates/:name`: the template named by the path. */
export const TemplateParams = TEMPLATE_API.params;
export type TemplateParams = z.infer<typeof TemplateParams>;
/** A stored template as the API shows it: the record less its tenant (the caller's), with its revision. */
export const TemplateView = TEMPLATE_API.view;
export type TemplateView = z.infer<typeof TemplateView>;
export const TemplateList = TEMPLATE_API.list;
export type TemplateList = z.infer<typeof TemplateList>;
export const TemplateDeleted = TEMPLATE_API.deleted;
export type TemplateDeleted = z.infer<typeof TemplateDeleted>;

/** Body of `POST /v1/templates/:name/preview`: the caller's lead to render it for. */
export const TemplatePreviewRequest = z
  .strictObject({ lead_id: Token })
  .meta({ id: "TemplatePreviewRequest", description: "Body of POST /v1/templates/:name/preview" });
export type TemplatePreviewRequest = z.infer<typeof TemplatePreviewRequest>;

/** A template rendered for one lead: what its channel sends. */
export const RenderedMessage = z
  .object({
    subject: z.string().optional(),
    body: z.string(),
    html: z.string().optional(),
  })
  .meta({
    id: "RenderedMessage",
    description: "data of the response to POST /v1/templates/:name/preview: the template rendered",
  });
export type RenderedMessage = z.infer<typeof RenderedMessage>;
