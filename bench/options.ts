/** The bench's command line, parsed without side effects (the smoke test checks it). */
export interface Options {
  smoke: boolean;
  /** Workloads to run; undefined means all. */
  only: string[] | undefined;
  runs: number;
  profile: boolean;
  out: string;
  /** Another checkout whose services to measure (a candidate fix), instead of this repository's. */
  engineRoot: string | undefined;
  help: boolean;
}

export function usage(workloads: readonly string[]): string {
  return `Usage: pnpm bench [--smoke] [--only ${workloads.join(",")}] [--runs N] [--profile] [--out DIR] [--engine-root DIR]`;
}

export function parseOptions(
  argv: readonly string[],
  workloads: readonly string[],
  defaultOut: string,
): Options {
  const options: Options = {
    smoke: false,
    only: undefined,
    runs: 0,
    profile: false,
    out: defaultOut,
    engineRoot: undefined,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith("--"))
        throw new Error(`${arg} needs a value\n${usage(workloads)}`);
      return next;
    };
    if (arg === "--smoke") options.smoke = true;
    else if (arg === "--profile") options.profile = true;
    else if (arg === "--help" || arg === "-h") options.help = true;
    else if (arg === "--out") options.out = value();
    else if (arg === "--engine-root") options.engineRoot = value();
    else if (arg === "--only") {
      options.only = value()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      for (const name of options.only) {
        if (!workloads.includes(name)) {
          throw new Error(
            `--only: unknown workload ${JSON.stringify(name)}; expected some of ${workloads.join(", ")}`,
          );
        }
      }
    } else if (arg === "--runs") {
      const text = value();
      const runs = Number(text);
      if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
        throw new Error(`--runs: expected an integer from 1 to 20, got ${JSON.stringify(text)}`);
      }
      options.runs = runs;
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${usage(workloads)}`);
  }
  if (options.runs === 0) options.runs = options.smoke ? 1 : 3;
  return options;
}
