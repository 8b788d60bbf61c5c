import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const locator = `${repoRoot}scripts/nats-server.sh`;

let resolved: string | undefined;

/**
 * Path of the nats-server (>= 2.11) the harness runs: `NATS_SERVER_BIN` when set, otherwise what
 * `bash scripts/nats-server.sh --check` finds (PATH, then the project cache). Never installs
 * anything. The answer is cached for the life of the process.
 *
 * @throws when no usable binary is found; the message says how to get one.
 */
export function resolveNatsServerBin(): string {
  if (resolved !== undefined) return resolved;
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) {
    resolved = checkedBinary(fromEnv);
    return resolved;
  }
  let found: string;
  try {
    found = execFileSync("bash", [locator, "--check"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(
      `No nats-server >= 2.11 found (NATS_SERVER_BIN unset, none on PATH, none in .cache/nats-server).` +
        ` Run \`bash scripts/nats-server.sh\` from the repository root to install one, or set NATS_SERVER_BIN.` +
        (stderr ? `\n${stderr}` : ""),
    );
  }
  resolved = found.trim();
  return resolved;
}

/** `bin` if it runs and reports a version >= 2.11 (per-message TTL), else a clear error. */
function checkedBinary(bin: string): string {
  let version: string;
  try {
    version = execFileSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    throw new Error(
      `NATS_SERVER_BIN=${bin} does not run. Point it at a nats-server >= 2.11, or unset it and run \`bash scripts/nats-server.sh\` to install one into the project cache.`,
    );
  }
  const [major = 0, minor = 0] = (/v(\d+)\.(\d+)\./.exec(version) ?? []).slice(1).map(Number);
  if (major < 2 || (major === 2 && minor < 11)) {
    throw new Error(
      `NATS_SERVER_BIN=${bin} is ${version.trim() || "of unknown version"}; the harness needs nats-server >= 2.11 (Nats-TTL). Unset it and run \`bash scripts/nats-server.sh\`.`,
    );
  }
  return bin;
}
