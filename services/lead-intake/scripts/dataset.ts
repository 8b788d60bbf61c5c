import type { Intent, Sentiment, Urgency } from "@followup/contracts";

/**
 * Synthetic labelled leads for training the conversion model. The details are composed from
 * phrase banks written so that `enrich()` reads back the intent, sentiment and urgency each lead
 * was generated as; whether the lead converted is drawn from GROUND_TRUTH, a logistic function
 * the trainer never sees.
 */

export const GENERATOR = "services/lead-intake/scripts/generate-dataset.ts";

export type GeneratedLead = {
  details: string;
  /** Hour of day (0-23, the lead's local time) the lead was created. */
  hour: number;
  converted: 0 | 1;
  /** What the generator meant, and the ground-truth conversion probability: diagnostics only. */
  generated_as: { intent: Intent; sentiment: Sentiment; urgency: Urgency; p: number };
};

/** mulberry32: a tiny 32-bit PRNG, enough for reproducible synthetic data. Returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Converting leads want to buy, are in a hurry, are pleased, write more, and write in the working
 * day. The lead_capture x high interaction is something the model's linear features can only
 * approximate, so the learned model is good but not perfect.
 */
export const GROUND_TRUTH = {
  intercept: -1.5,
  intent: { lead_capture: 1.8, support: -0.4, info: 0 },
  sentiment: { positive: 0.6, negative: -0.9, neutral: 0 },
  urgency: { high: 0.9, normal: 0 },
  leadCaptureAndHigh: 0.4,
  /** Weight of the standardised log1p(details length). */
  logLength: { weight: 0.5, mean: 4.75, std: 0.47 },
  /** A cosine over the day, highest at `peakHour`. */
  hour: { amplitude: 0.35, peakHour: 11 },
} as const;

export function conversionProbability(lead: {
  intent: Intent;
  sentiment: Sentiment;
  urgency: Urgency;
  detailsLength: number;
  hour: number;
}): number {
  const t = GROUND_TRUTH;
  const logit =
    t.intercept +
    t.intent[lead.intent] +
    t.sentiment[lead.sentiment] +
    t.urgency[lead.urgency] +
    (lead.intent === "lead_capture" && lead.urgency === "high" ? t.leadCaptureAndHigh : 0) +
    (t.logLength.weight * (Math.log1p(lead.detailsLength) - t.logLength.mean)) / t.logLength.std +
    t.hour.amplitude * Math.cos((2 * Math.PI * (lead.hour - t.hour.peakHour)) / 24);
  return 1 / (1 + Math.exp(-logit));
}

const INTENT_PHRASES: Record<Intent, readonly string[]> = {
  lead_capture: [
    "I'd like to book a deep clean of a two bedroom flat.",
    "What is your pricing for a full service?",
    "Could you send me a quote for the kitchen?",
    "I want to schedule an appointment next week.",
    "We have a budget of around $3000 for this.",
    "Looking to hire someone for a bathroom remodel.",
    "Can I reserve a slot for Saturday?",
    "How do I sign up for the monthly plan?",
    "How much would a consultation be?",
    "We are interested in a demo for our team.",
    "I would like to order two of the large units.",
    "Do you take a deposit to hold the date?",
  ],
  support: [
    "I need help with the app on my phone.",
    "There is an issue with my last invoice.",
    "I would like a refund for last month.",
    "Please cancel my subscription.",
    "The unit you installed is broken.",
    "I keep getting an error when I log in.",
    "The heater is not working again.",
    "I want to file a complaint about the technician.",
    "Who do I talk to for support with my account?",
    "My card was charged twice.",
  ],
  info: [
    "Just browsing, not sure what I want.",
    "What are your opening hours?",
    "Where is your office located?",
    "Do you cover the north side of town?",
    "I saw your ad and I am curious.",
    "Can you tell me more about what you do?",
    "Do you work on weekends?",
    "Is there parking near your office?",
  ],
};

const SENTIMENT_PHRASES: Record<Sentiment, readonly string[]> = {
  positive: [
    "Thanks so much!",
    "Your reviews look great.",
    "I love your work.",
    "Excellent service last time.",
    "Really excited about this.",
    "Looking forward to hearing from you.",
    "Card details are ready.",
  ],
  negative: [
    "Honestly I'm frustrated.",
    "The last visit was terrible.",
    "Very disappointed so far.",
    "Worst experience I have had.",
    "I'm not happy about the wait.",
    "I am angry about this.",
    "Your website is awful.",
  ],
  neutral: [],
};

const URGENCY_PHRASES: Record<Urgency, readonly string[]> = {
  high: [
    "This is urgent.",
    "Please call me today.",
    "I need this ASAP.",
    "Can someone come tomorrow?",
    "It's an emergency.",
    "Need an answer right away.",
    "Please reply immediately.",
    "Can you do it tonight?",
  ],
  normal: ["No rush.", "Sometime next month is fine.", "Let me know when you can.", "Maybe in a few weeks."],
};

// Words that look like keywords to a substring matcher: the enrichment must not be fooled.
const FILLER_PHRASES = [
  "My name is on the form.",
  "I found you on Facebook.",
  "I know a friend who used you before.",
  "We live nowhere near the city centre.",
  "We are a family of four.",
  "The house is about 120 square metres.",
  "You can reach me on this number after work.",
  "My neighbour recommended you.",
  "I'm usually around in the evenings.",
  "We moved here last year.",
];

type Rng = () => number;

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

function draw<T extends string>(rng: Rng, weights: Record<T, number>): T {
  const entries = Object.entries(weights) as [T, number][];
  let u = rng();
  for (const [value, weight] of entries) {
    u -= weight;
    if (u < 0) return value;
  }
  return entries[entries.length - 1]![0];
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

const SENTIMENT_BY_INTENT: Record<Intent, Record<Sentiment, number>> = {
  lead_capture: { positive: 0.35, negative: 0.08, neutral: 0.57 },
  support: { positive: 0.15, negative: 0.4, neutral: 0.45 },
  info: { positive: 0.2, negative: 0.1, neutral: 0.7 },
};
const HIGH_URGENCY_BY_INTENT: Record<Intent, number> = { lead_capture: 0.35, support: 0.35, info: 0.1 };

function generateLead(rng: Rng): GeneratedLead {
  const intent = draw<Intent>(rng, { lead_capture: 0.45, support: 0.25, info: 0.3 });
  const sentiment = draw(rng, SENTIMENT_BY_INTENT[intent]);
  const urgency: Urgency = rng() < HIGH_URGENCY_BY_INTENT[intent] ? "high" : "normal";
  const sentences = [pick(rng, INTENT_PHRASES[intent])];
  if (sentiment !== "neutral") sentences.push(pick(rng, SENTIMENT_PHRASES[sentiment]));
  if (urgency === "high" || rng() < 0.4) sentences.push(pick(rng, URGENCY_PHRASES[urgency]));
  const fillers = Math.floor(rng() * 5);
  sentences.push(...shuffle(rng, [...FILLER_PHRASES]).slice(0, fillers));
  const details = shuffle(rng, sentences).join(" ");
  // Most leads arrive in the working day, some at any hour.
  const hour = rng() < 0.8 ? 8 + Math.floor(rng() * 14) : Math.floor(rng() * 24);
  const p = conversionProbability({ intent, sentiment, urgency, detailsLength: details.length, hour });
  const converted = rng() < p ? 1 : 0;
  return { details, hour, converted, generated_as: { intent, sentiment, urgency, p } };
}

/** `n` leads, the same for the same seed. */
export function generateLeads(n: number, seed: number): GeneratedLead[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => generateLead(rng));
}
