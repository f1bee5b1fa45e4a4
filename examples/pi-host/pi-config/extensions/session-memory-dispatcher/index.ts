// When a session ends, tell the session-memory dispatcher (a sidecar on
// 127.0.0.1:7302) so the analyzer can summarize it into the agents database.
// Best effort: when the dispatcher is down, the sweeper job finds the session later.
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

const DISPATCHER_URL = process.env.PI_MEMORY_DISPATCHER_URL ?? "http://127.0.0.1:7302";
const TIMEOUT_MS = 2000;

export default function sessionMemoryDispatcher(pi: ExtensionAPI): void {
  pi.on("session_shutdown", async (_event, ctx) => {
    const sessionFile = ctx.sessionManager.getSessionFile();
    if (!sessionFile) {
      return; // --no-session: nothing to remember
    }
    try {
      await fetch(`${DISPATCHER_URL}/sessions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ session_file: sessionFile, reason: "shutdown" }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      // The sweeper queues sessions the dispatcher never heard about.
    }
  });
}
