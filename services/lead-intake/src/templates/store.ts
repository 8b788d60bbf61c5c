import {
  type ErrorDetail,
  type KnownChannel,
  MAX_TEMPLATES_PER_TENANT,
  type Template,
  TemplateRecord,
  templateKey,
} from "@followup/contracts";
import type { BrokerHandles } from "../broker.js";
import type { RevisionCondition } from "../http/request.js";
import { type RecordKind, type RecordWrite, RevisionedStore } from "../revisioned/index.js";

/** A tenant's message templates in the `templates` KV bucket under `<tenant>.<name>`. */
const TEMPLATES: RecordKind<TemplateRecord> = {
  what: "template",
  schema: TemplateRecord,
  key: templateKey,
  maxPerTenant: MAX_TEMPLATES_PER_TENANT,
};

export type TemplateStore = RevisionedStore<TemplateRecord>;

export function templateStore(handles: BrokerHandles): TemplateStore {
  const bucket = handles.topology.buckets.templates.bucket;
  return new RevisionedStore({ kv: handles.templates, jsm: handles.jsm, bucket }, TEMPLATES);
}

/** Creates or replaces the tenant's template (see RevisionedStore.put), stamped with `now`. */
export function putTemplate(
  store: TemplateStore,
  tenant: string,
  name: string,
  template: Template,
  condition: RevisionCondition | null,
  now: Date,
): Promise<RecordWrite<TemplateRecord>> {
  return store.put(tenant, { ...template, tenant, name, updated_at: now.toISOString() }, condition);
}

/**
 * What is wrong with the templates a sequence's steps name: one that the tenant does not have,
 * or one written for another channel than its step's, each named `steps.<i>.template`. Each
 * template is read once, however many steps name it.
 */
export async function stepTemplateProblems(
  store: TemplateStore,
  tenant: string,
  steps: readonly { channel: KnownChannel; template?: string | undefined }[],
): Promise<ErrorDetail[]> {
  const names = [...new Set(steps.flatMap((step) => (step.template === undefined ? [] : [step.template])))];
  const found = new Map(
    await Promise.all(names.map(async (name) => [name, await store.get(tenant, name)] as const)),
  );
  const problems: ErrorDetail[] = [];
  steps.forEach((step, i) => {
    if (step.template === undefined) return;
    const template = found.get(step.template);
    const path = `steps.${i}.template`;
    if (template === null || template === undefined) {
      problems.push({
        path,
        message: `template ${step.template} does not exist: PUT /v1/templates/${step.template} first`,
      });
    } else if (template.channel !== step.channel) {
      problems.push({
        path,
        message: `template ${step.template} is a ${template.channel} template; this step's channel is ${step.channel}`,
      });
    }
  });
  return problems;
}
