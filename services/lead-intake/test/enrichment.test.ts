import { describe, expect, it } from "vitest";
import {
  baselineScore,
  enrich,
  IGNORED_PHRASES,
  INTENT_RULES,
  SENTIMENT_KEYWORDS,
  URGENCY_KEYWORDS,
} from "../src/scoring/enrichment.js";

const ruleIntents = INTENT_RULES.flatMap((rule) =>
  rule.keywords.map((keyword) => ({ cue: rule.cue, keyword, intent: rule.intent })),
);

describe("keyword tables", () => {
  it("lists no keyword twice within a dimension", () => {
    const intentWords = [...ruleIntents.map((r) => r.keyword), ...IGNORED_PHRASES.intent];
    const sentimentWords = [
      ...SENTIMENT_KEYWORDS.positive,
      ...SENTIMENT_KEYWORDS.negative,
      ...IGNORED_PHRASES.sentiment,
    ];
    const urgencyWords = [...URGENCY_KEYWORDS.high, ...IGNORED_PHRASES.urgency];
    for (const words of [intentWords, sentimentWords, urgencyWords]) {
      expect(new Set(words).size).toBe(words.length);
    }
  });
});

describe("enrich: intent", () => {
  it.each(ruleIntents)("$cue keyword '$keyword' alone is $intent", ({ keyword, intent }) => {
    expect(enrich(keyword).intent).toBe(intent);
    expect(enrich(`Hello, about ${keyword}, please.`).intent).toBe(intent);
  });

  it.each([
    ["What are your opening hours?", "info"],
    ["Just browsing, not sure what I want.", "info"],
    ["", "info"],
  ])("'%s' with no cue is %s", (details, intent) => {
    expect(enrich(details).intent).toBe(intent);
  });

  // Precedence: after_sales > buying > trouble.
  it.each([
    ["I want to cancel my booking", "support", "after_sales beats buying"],
    ["Refund the deposit I paid for the appointment", "support", "after_sales beats buying"],
    ["Complaint: I need help, the order is broken", "support", "after_sales beats buying and trouble"],
    ["Can you help me book an appointment?", "lead_capture", "buying beats trouble (help)"],
    ["The heater is broken, can I get a quote?", "lead_capture", "buying beats trouble (broken)"],
    ["Support says there is an error with the pricing page", "lead_capture", "buying beats trouble"],
    ["I need help, the app shows an error", "support", "trouble alone"],
    ["I want to cancel", "support", "after_sales alone"],
  ])("'%s' is %s (%s)", (details, intent) => {
    expect(enrich(details).intent).toBe(intent);
  });
});

describe("enrich: sentiment", () => {
  it.each(SENTIMENT_KEYWORDS.positive.map((k) => [k]))("'%s' is positive", (keyword) => {
    expect(enrich(`Oh, ${keyword}.`).sentiment).toBe("positive");
  });
  it.each(SENTIMENT_KEYWORDS.negative.map((k) => [k]))("'%s' is negative", (keyword) => {
    expect(enrich(`Oh, ${keyword}.`).sentiment).toBe("negative");
  });

  it.each([
    ["I'm not happy with the wait", "negative", "the phrase wins over the word inside it"],
    ["Not good at all", "negative", "the phrase wins over the word inside it"],
    ["Thanks, but the visit was terrible", "negative", "a tie goes to negative"],
    ["Great team, excellent work, one bad day", "positive", "more positive than negative"],
    ["Bad start, awful follow-up, thanks anyway", "negative", "more negative than positive"],
    ["Not bad", "neutral", "an ignored phrase counts for nothing"],
    ["Please call me back", "neutral", "no keyword"],
  ])("'%s' is %s (%s)", (details, sentiment) => {
    expect(enrich(details).sentiment).toBe(sentiment);
  });
});

describe("enrich: urgency", () => {
  it.each(URGENCY_KEYWORDS.high.map((k) => [k]))("'%s' is high", (keyword) => {
    expect(enrich(`Please, ${keyword}!`).urgency).toBe("high");
  });

  it.each([
    ["Sometime next month is fine", "normal"],
    ["Just looking for now", "normal"],
    ["Not urgent, take your time", "normal"],
    ["Come today, not urgent", "high"],
  ])("'%s' is %s", (details, urgency) => {
    expect(enrich(details).urgency).toBe(urgency);
  });
});

describe("enrich: whole words, not substrings", () => {
  it.each([
    ["I know you from a friend", "now inside know"],
    ["We live nowhere near you", "now inside nowhere"],
    ["I found you on facebook", "book inside facebook"],
    ["My notebook is on the desk", "book inside notebook"],
    ["The helpful staff", "help inside helpful"],
    ["I know", "now inside know"],
    ["Bookkeeping and reordering", "book and order inside longer words"],
    ["Happiness is a state of mind", "happy is not happiness"],
    ["A bookshelf with ordered files, in order to tidy", "book/order inside longer words; in order to"],
    ["Nowadays the urgentcare centre knows", "now inside nowadays, urgent inside urgentcare"],
  ])("'%s' is the neutral default (%s)", (details, why) => {
    expect(enrich(details), why).toEqual({
      intent: "info",
      sentiment: "neutral",
      urgency: "normal",
      score: 0.5,
    });
  });
});

describe("enrich: punctuation, case and unicode", () => {
  it.each([
    ["Urgent: call me", "high"],
    ["URGENT!!!", "high"],
    ["(asap)", "high"],
    ["A.S.A.P. please", "high"],
    ["Ｕｒｇｅｎｔ", "high"], // full-width letters, NFKD-normalised
    ["Úrgent", "high"], // diacritics stripped
    ["right\naway", "high"], // a phrase across a line break
    ["tomorrow.", "high"],
  ])("'%s' has urgency %s", (details, urgency) => {
    expect(enrich(details).urgency).toBe(urgency);
  });

  it.each([
    ["BOOK NOW", "lead_capture"],
    ["sign-up", "lead_capture"],
    ["Sign   up", "lead_capture"],
    ["It doesn’t work", "support"], // typographic apostrophe
    ["It doesn't work", "support"],
    ["Café prices?", "lead_capture"],
    ["予約したい book", "lead_capture"],
    ["予約したい", "info"],
  ])("'%s' has intent %s", (details, intent) => {
    expect(enrich(details).intent).toBe(intent);
  });

  it("reads can’t wait with a typographic apostrophe", () => {
    expect(enrich("Can’t wait!").sentiment).toBe("positive");
  });

  it.each(["", "   ", "\n\t", "!!!???", "🙂🙂", "12345", "a"])("'%s' is the neutral default", (details) => {
    expect(enrich(details)).toEqual({ intent: "info", sentiment: "neutral", urgency: "normal", score: 0.5 });
  });

  it("handles 2000 characters quickly", () => {
    const details = "Need a quote today, thanks! I know facebook. ".repeat(45).slice(0, 2000);
    const started = performance.now();
    for (let i = 0; i < 100; i++) enrich(details);
    expect(enrich(details)).toEqual({
      intent: "lead_capture",
      sentiment: "positive",
      urgency: "high",
      score: 0.8,
    });
    expect((performance.now() - started) / 100).toBeLessThan(5);
  });
});

describe("baseline score", () => {
  it.each([
    ["lead_capture", "neutral", "normal", 0.7],
    ["lead_capture", "positive", "normal", 0.7],
    ["lead_capture", "neutral", "high", 0.8],
    ["lead_capture", "negative", "normal", 0.6],
    ["lead_capture", "negative", "high", 0.7],
    ["support", "neutral", "normal", 0.5],
    ["support", "neutral", "high", 0.6],
    ["support", "negative", "normal", 0.4],
    ["support", "negative", "high", 0.5],
    ["info", "positive", "normal", 0.5],
    ["info", "negative", "normal", 0.4],
    ["info", "neutral", "high", 0.6],
  ] as const)("%s / %s / %s is %d", (intent, sentiment, urgency, score) => {
    expect(baselineScore(intent, sentiment, urgency)).toBe(score);
  });

  it.each([
    ["I want to book, this is urgent", 0.8],
    ["I want to book, this is terrible", 0.6],
    ["Book today, terrible service last time", 0.7],
    ["Help, urgent", 0.6],
    ["Help, awful", 0.4],
    ["Where are you?", 0.5],
  ])("enrich('%s').score is %d", (details, score) => {
    expect(enrich(details).score).toBe(score);
  });

  it("scores the two reference leads of the system being replaced", () => {
    expect(
      enrich("Urgent: Need to book immediately for tomorrow morning. Budget $5000, credit card ready."),
    ).toEqual({ intent: "lead_capture", sentiment: "positive", urgency: "high", score: 0.8 });
    expect(enrich("Just browsing, not sure what I want.")).toEqual({
      intent: "info",
      sentiment: "neutral",
      urgency: "normal",
      score: 0.5,
    });
  });
});
