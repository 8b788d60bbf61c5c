import type { Enrichment, Intent, Sentiment, Urgency } from "@followup/contracts";

/**
 * The keyword model of the system being replaced, with one deliberate difference: keywords match
 * whole words and word sequences, never substrings ("I know" is not "now", "facebook" is not
 * "book"). Text is lower-cased, compatibility-normalised (NFKD) and stripped of diacritics, then
 * split into words of letters and digits (an apostrophe inside a word is kept: "can't"). Any other
 * character separates words, so "Urgent:", "ASAP!!" and "sign-up" read as "urgent", "asap" and
 * "sign up".
 */

/**
 * The three cues that decide the intent. When several match, the first in this order wins:
 *
 * 1. after_sales -> support: refund, cancel, complaint... name an existing purchase going wrong;
 *    "cancel my booking" must not start a sales sequence, although "booking" is a buying word.
 * 2. buying -> lead_capture: a buying word beats generic trouble and help words, because
 *    "can you help me book" and "the heater is broken, I need a quote" are requests to buy.
 * 3. trouble -> support: help, support, broken, error, not working...
 *
 * No cue at all: info.
 */
export const INTENT_RULES = [
  {
    cue: "after_sales",
    intent: "support",
    keywords: [
      "refund",
      "refunds",
      "refunded",
      "money back",
      "cancel",
      "cancelled",
      "canceled",
      "cancelling",
      "canceling",
      "cancellation",
      "complaint",
      "complaints",
      "complain",
      "chargeback",
      "charged twice",
      "overcharged",
      "unsubscribe",
      "warranty",
    ],
  },
  {
    cue: "buying",
    intent: "lead_capture",
    keywords: [
      "book",
      "booking",
      "buy",
      "buying",
      "purchase",
      "purchasing",
      "price",
      "prices",
      "pricing",
      "quote",
      "quotes",
      "estimate",
      "how much",
      "cost",
      "costs",
      "appointment",
      "appointments",
      "schedule",
      "scheduling",
      "budget",
      "hire",
      "hiring",
      "order",
      "ordering",
      "reserve",
      "reservation",
      "sign up",
      "signup",
      "subscribe",
      "demo",
      "consultation",
      "trial",
      "availability",
      "deposit",
      "credit card",
      "get started",
      "interested in",
    ],
  },
  {
    cue: "trouble",
    intent: "support",
    keywords: [
      "help",
      "support",
      "assist",
      "assistance",
      "customer service",
      "helpdesk",
      "help desk",
      "issue",
      "issues",
      "problem",
      "problems",
      "broken",
      "error",
      "errors",
      "bug",
      "crash",
      "crashed",
      "crashes",
      "failed",
      "not working",
      "doesn't work",
      "does not work",
      "stopped working",
      "can't log in",
      "cannot log in",
    ],
  },
] as const satisfies readonly { cue: string; intent: Intent; keywords: readonly string[] }[];

export type IntentCue = (typeof INTENT_RULES)[number]["cue"];

type Dimension = "intent" | "sentiment" | "urgency";

/**
 * Sentiment counts matches: more positive than negative matches is positive, otherwise any negative
 * match is negative (a tie goes to negative: "thanks, but the visit was terrible" is a complaint).
 * Longer phrases win over the words inside them, so "not happy" is negative only.
 */
export const SENTIMENT_KEYWORDS = {
  positive: [
    "great",
    "thanks",
    "thank you",
    "thx",
    "love",
    "loved",
    "excellent",
    "happy",
    "ready",
    "excited",
    "awesome",
    "amazing",
    "wonderful",
    "fantastic",
    "perfect",
    "pleased",
    "glad",
    "appreciate",
    "appreciated",
    "delighted",
    "impressed",
    "good",
    "nice",
    "can't wait",
    "cannot wait",
    "looking forward",
  ],
  negative: [
    "bad",
    "terrible",
    "angry",
    "disappointed",
    "disappointing",
    "awful",
    "hate",
    "worst",
    "frustrated",
    "frustrating",
    "annoyed",
    "upset",
    "horrible",
    "useless",
    "unacceptable",
    "ridiculous",
    "furious",
    "unhappy",
    "not happy",
    "not good",
    "not great",
    "not satisfied",
    "not pleased",
    "not impressed",
    "rip off",
    "ripoff",
  ],
} as const satisfies Record<Exclude<Sentiment, "neutral">, readonly string[]>;

/** Any match makes the urgency high. */
export const URGENCY_KEYWORDS: Readonly<Record<Exclude<Urgency, "normal">, readonly string[]>> = {
  high: [
    "urgent",
    "urgently",
    "asap",
    "a s a p",
    "immediately",
    "immediate",
    "now",
    "right now",
    "right away",
    "straight away",
    "as soon as possible",
    "today",
    "tonight",
    "tomorrow",
    "this morning",
    "this afternoon",
    "this evening",
    "same day",
    "emergency",
    "hurry",
    "quickly",
  ],
};

/**
 * Phrases that contain a keyword without meaning it. They are matched like keywords (longest
 * first) and cover their words in their dimension, but count for nothing: "in order to" is not an
 * order, "no problem" is not a problem, "for now" is not urgent.
 */
export const IGNORED_PHRASES = {
  intent: ["in order to", "no problem", "not a problem", "no problems", "no issue", "no issues"],
  sentiment: ["not bad", "not too bad"],
  urgency: ["for now", "not urgent", "no hurry", "not in a hurry", "until now", "by now"],
} as const satisfies Record<Dimension, readonly string[]>;

// A word: letters and digits, with inner apostrophes kept ("can't", "o'clock").
const WORD = /[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*/gu;
const MARKS = /\p{M}+/gu;
const APOSTROPHES = /[\u2018\u2019\u02bc\u0060\u00b4]/g;

function tokenize(text: string): string[] {
  const plain = text.toLowerCase().normalize("NFKD").replace(MARKS, "").replace(APOSTROPHES, "'");
  return plain.match(WORD) ?? [];
}

type Label = "ignored" | IntentCue | Exclude<Sentiment, "neutral"> | Exclude<Urgency, "normal">;
type Phrase = { words: readonly string[]; dimension: Dimension; label: Label };

/** Phrases by their first word, longest first, so the longest phrase at a position wins. */
function buildIndex(): Map<string, Phrase[]> {
  const index = new Map<string, Phrase[]>();
  const add = (dimension: Dimension, label: Label, keyword: string) => {
    const words = tokenize(keyword);
    const first = words[0];
    if (first === undefined) return;
    const bucket = index.get(first) ?? [];
    bucket.push({ words, dimension, label });
    index.set(first, bucket);
  };
  for (const rule of INTENT_RULES) for (const k of rule.keywords) add("intent", rule.cue, k);
  for (const [sentiment, keywords] of Object.entries(SENTIMENT_KEYWORDS)) {
    for (const k of keywords) add("sentiment", sentiment as Label, k);
  }
  for (const k of URGENCY_KEYWORDS.high) add("urgency", "high", k);
  for (const [dimension, phrases] of Object.entries(IGNORED_PHRASES)) {
    for (const k of phrases) add(dimension as Dimension, "ignored", k);
  }
  for (const bucket of index.values()) bucket.sort((a, b) => b.words.length - a.words.length);
  return index;
}

const INDEX = buildIndex();

function startsAt(tokens: readonly string[], at: number, words: readonly string[]): boolean {
  for (let k = 1; k < words.length; k++) if (tokens[at + k] !== words[k]) return false;
  return true;
}

/**
 * One pass over the words: at each position, per dimension, the longest phrase starting there is
 * counted and the words it covers are skipped for that dimension only (a word may be both an
 * urgency and an intent word).
 */
function matchLabels(details: string): Map<Label, number> {
  const tokens = tokenize(details);
  const counts = new Map<Label, number>();
  const freeFrom: Record<Dimension, number> = { intent: 0, sentiment: 0, urgency: 0 };
  for (let i = 0; i < tokens.length; i++) {
    const candidates = INDEX.get(tokens[i]!);
    if (candidates === undefined) continue;
    for (const phrase of candidates) {
      if (freeFrom[phrase.dimension] > i || !startsAt(tokens, i, phrase.words)) continue;
      counts.set(phrase.label, (counts.get(phrase.label) ?? 0) + 1);
      freeFrom[phrase.dimension] = i + phrase.words.length;
    }
  }
  return counts;
}

/** 0.7 for lead_capture else 0.5, +0.1 for high urgency, -0.1 for negative; 2 decimals, in [0, 1]. */
export function baselineScore(intent: Intent, sentiment: Sentiment, urgency: Urgency): number {
  let score = intent === "lead_capture" ? 0.7 : 0.5;
  if (urgency === "high") score += 0.1;
  if (sentiment === "negative") score -= 0.1;
  return Math.min(1, Math.max(0, Math.round(score * 100) / 100));
}

export function enrich(details: string): Enrichment {
  const counts = matchLabels(details);
  const intent = INTENT_RULES.find((rule) => counts.has(rule.cue))?.intent ?? "info";
  const positive = counts.get("positive") ?? 0;
  const negative = counts.get("negative") ?? 0;
  const sentiment: Sentiment = positive > negative ? "positive" : negative > 0 ? "negative" : "neutral";
  const urgency: Urgency = counts.has("high") ? "high" : "normal";
  return { intent, sentiment, urgency, score: baselineScore(intent, sentiment, urgency) };
}
