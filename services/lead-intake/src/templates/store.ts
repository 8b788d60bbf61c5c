import {
  type ErrorDetail,
  type KnownChannel,
  MAX_TEMPLATES_PER_TENANT,
  TemplateRecord,
  templateKey,
} from "@followup/contracts";
import type { BrokerHandles } from "../broker.js";
import { openStore, type RevisionedStore } from "../revisioned/index.js";

/** A tenant's message templates in the `templates` KV bucket under `<tenant>.<name>`. */
export function templateStore(handles: BrokerHandles): TemplateStore {
  return openStore(handles, "templates", {
    what: "template",
    schema: TemplateRecord,
    key: templateKey,
    maxPerTenant: MAX_TEMPLATES_PER_TENANT,
  });
}

export type TemplateStore = RevisionedStore<TemplateRecord>;

/**
 * What is wrong with the templates a sequence's steps name: one that the tenant does not have,
 * or one written for another channel than its step's, each named `steps.<i>.template` (or
 * `steps.<i>.variants.<j>.template` for a variant's). Each template is read once, however many
 * steps name it.
 */
export async function stepTemplateProblems(
  store: TemplateStore,
  tenant: string,
  steps: readonly {
    channel: KnownChannel;
    template?: string | undefined;
    variants?: readonly { template: string }[] | undefined;
  }[],
): Promise<ErrorDetail[]> {
  const named = steps.flatMap((step, i) => [
    ...(step.template === undefined ? [] : [{ step, name: step.template, path: `steps.${i}.template` }]),
    ...(step.variants ?? []).map((v, j) => ({
      step,
      name: v.template,
      path: `steps.${i}.variants.${j}.template`,
    })),
  ]);
  const names = [...new Set(named.map((n) => n.name))];
  const found = new Map(
    await Promise.all(names.map(async (name) => [name, await store.get(tenant, name)] as const)),
  );
  const problems: ErrorDetail[] = [];
  for (const { step, name, path } of named) {
    const template = found.get(name);
    if (template === null || template === undefined) {
      problems.push({ path, message: `template ${name} does not exist: PUT /v1/templates/${name} first` });
    } else if (template.channel !== step.channel) {
      problems.push({
        path,
        message: `template ${name} is for ${template.channel}; this step's channel is ${step.channel}`,
      });
    }
  }
  return problems;
}
