// /subagent TASK: runs a self-contained task in a separate pi (print mode, no session)
// and brings its answer back into this conversation.
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

const TIMEOUT_MS = 10 * 60 * 1000;
const STATUS_KEY = "subagent";

export default function subagent(pi: ExtensionAPI): void {
  pi.registerCommand("subagent", {
    description: "Run a self-contained task in a separate pi and bring its answer back",
    handler: async (args, ctx) => {
      const task = args.trim();
      if (!task) {
        ctx.ui.notify("usage: /subagent TASK", "warning");
        return;
      }
      ctx.ui.setStatus(STATUS_KEY, `subagent: ${task.slice(0, 40)}`);
      try {
        const result = await pi.exec("pi", ["--print", "--no-session", task], {
          timeout: TIMEOUT_MS,
        });
        if (result.code !== 0 || result.killed) {
          const why = result.killed ? "timed out" : `exit ${result.code}`;
          ctx.ui.notify(`subagent failed (${why}): ${result.stderr.trim().slice(0, 300)}`, "error");
          return;
        }
        pi.sendUserMessage(
          `A subagent did this task: ${task}\n\nIts answer:\n\n${result.stdout.trim()}`,
          { deliverAs: "followUp" },
        );
      } finally {
        ctx.ui.setStatus(STATUS_KEY, undefined);
      }
    },
  });
}
