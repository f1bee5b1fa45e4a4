// /switch: pick one of the most recent sessions (any project) and continue it.
import { readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

const SHOWN = 15;

interface SessionFile {
  path: string;
  label: string;
  mtimeMs: number;
}

function sessionsDir(): string {
  const agentDir = process.env.PI_CODING_AGENT_DIR ?? join(homedir(), ".pi", "agent");
  return join(agentDir, "sessions");
}

/** Sessions live in one folder per working directory: sessions/<cwd>/<time>_<id>.jsonl. */
function recentSessions(): SessionFile[] {
  const root = sessionsDir();
  const found: SessionFile[] = [];
  let projects: string[];
  try {
    projects = readdirSync(root);
  } catch {
    return [];
  }
  for (const project of projects) {
    let files: string[];
    try {
      files = readdirSync(join(root, project)).filter((f) => f.endsWith(".jsonl"));
    } catch {
      continue;
    }
    for (const file of files) {
      const path = join(root, project, file);
      try {
        const mtimeMs = statSync(path).mtimeMs;
        const when = new Date(mtimeMs).toISOString().slice(0, 16).replace("T", " ");
        found.push({ path, mtimeMs, label: `${when}  ${project}  ${basename(file, ".jsonl")}` });
      } catch {
        // removed while we looked
      }
    }
  }
  return found.sort((a, b) => b.mtimeMs - a.mtimeMs).slice(0, SHOWN);
}

export default function sessionSwitch(pi: ExtensionAPI): void {
  pi.registerCommand("switch", {
    description: `Continue one of the ${SHOWN} most recent sessions`,
    handler: async (_args, ctx) => {
      const current = ctx.sessionManager.getSessionFile();
      const sessions = recentSessions().filter((s) => s.path !== current);
      if (sessions.length === 0) {
        ctx.ui.notify(`no other sessions in ${sessionsDir()}`, "info");
        return;
      }
      const choice = await ctx.ui.select("Continue which session?", sessions.map((s) => s.label));
      const picked = sessions.find((s) => s.label === choice);
      if (!picked) {
        return;
      }
      await ctx.waitForIdle();
      const result = await ctx.switchSession(picked.path);
      if (result.cancelled) {
        ctx.ui.notify("switch cancelled", "info");
      }
    },
  });
}
