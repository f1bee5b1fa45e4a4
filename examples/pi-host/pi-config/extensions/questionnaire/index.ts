// /questionnaire [TOPIC]: asks the questions a task needs answered before work starts,
// then sends the answers as one message.
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

const QUESTIONS = [
  "What is the goal, in one sentence?",
  "What must not change?",
  "How will we know it works?",
  "Any constraint (deadline, tools, style)?",
];

export default function questionnaire(pi: ExtensionAPI): void {
  pi.registerCommand("questionnaire", {
    description: "Answer a few questions about a task, then send them as the brief",
    handler: async (args, ctx) => {
      if (!ctx.hasUI) {
        ctx.ui.notify("/questionnaire needs the interactive UI", "warning");
        return;
      }
      const answers: string[] = [];
      for (const question of QUESTIONS) {
        const answer = await ctx.ui.input(question);
        if (answer === undefined) {
          ctx.ui.notify("questionnaire cancelled", "info");
          return;
        }
        answers.push(`- ${question}\n  ${answer.trim() || "(no answer)"}`);
      }
      const topic = args.trim();
      const heading = topic ? `Brief for: ${topic}` : "Brief";
      pi.sendUserMessage(`${heading}\n\n${answers.join("\n")}`);
    },
  });
}
