import { randomBytes } from "node:crypto";

/**
 * The tests' own admin user: no permission limits, for probes that read every consumer's state,
 * stored messages and buckets, or subscribe to everything. Test-only: the harness adds it to the
 * authorization of the servers it starts (`unrestricted` of `authorizationConfig`), nothing
 * shipped does. A new password per test process; nats-server ignores credentials when it has no
 * authorization, so probes may always pass these (as nats.js connect options).
 */
export const TEST_ADMIN = {
  user: "test-admin",
  pass: randomBytes(18).toString("base64url"),
} as const;

/** TEST_ADMIN as an `unrestricted` user of `authorizationConfig`. */
export const TEST_ADMIN_USER = { user: TEST_ADMIN.user, password: TEST_ADMIN.pass } as const;
