/** What the scripts' command lines share. */

/** An integer option of at least `min`; anything else ends the script with exit code 2, naming the option. */
export function integerOption(name: string, raw: string, min: number): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`--${name} must be an integer >= ${min}, got "${raw}"`);
    process.exit(2);
  }
  return value;
}
