import { createServer } from "node:net";

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it by binding port 0, and
 * the socket is released before this resolves. Another process can take it in between, so callers
 * that bind it must be ready to retry on EADDRINUSE (startNatsServer and startNatsCluster are).
 */
export async function freePort(): Promise<number> {
  // The kernel may hand the same port out again once it is released, so a test that asks for two
  // (nats-server's and a service's) could get one twice: a port already handed out is skipped.
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await kernelPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("freePort: the kernel kept handing out ports this process already has");
}

/** Ports freePort returned in this process. */
const handedOut = new Set<number>();

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("freePort: the socket has no TCP address"));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}
