// The part of Pi's extension API the extensions in this repo use, so that
// `bun run typecheck` needs only typescript and @types/node. At run time Pi itself
// provides "@mariozechner/pi-coding-agent" to the extensions it loads; the imports are
// `import type`, erased before anything runs. Keep this in step with
// docs/extensions.md of the Pi version the host runs (0.73.x).

declare module "@mariozechner/pi-coding-agent" {
  export type NotifyLevel = "info" | "warning" | "error";

  export interface ExtensionUIContext {
    notify(message: string, level?: NotifyLevel): void;
    input(title: string, placeholder?: string): Promise<string | undefined>;
    select(title: string, options: string[]): Promise<string | undefined>;
    confirm(title: string, message: string): Promise<boolean>;
    setStatus(key: string, text: string | undefined): void;
  }

  export interface ReadonlySessionManager {
    /** The session's JSONL file; undefined for `--no-session`. */
    getSessionFile(): string | undefined;
  }

  export interface ExtensionContext {
    cwd: string;
    hasUI: boolean;
    ui: ExtensionUIContext;
    sessionManager: ReadonlySessionManager;
  }

  export interface ExtensionCommandContext extends ExtensionContext {
    waitForIdle(): Promise<void>;
    switchSession(sessionPath: string): Promise<{ cancelled: boolean }>;
  }

  export interface SessionStartEvent {
    type: "session_start";
    reason: "startup" | "reload" | "new" | "resume" | "fork";
  }

  export interface SessionShutdownEvent {
    type: "session_shutdown";
  }

  export interface ExtensionEventMap {
    session_start: SessionStartEvent;
    session_shutdown: SessionShutdownEvent;
  }

  export interface ExecOptions {
    signal?: AbortSignal;
    timeout?: number;
  }

  export interface ExecResult {
    stdout: string;
    stderr: string;
    code: number;
    killed: boolean;
  }

  export interface RegisteredCommand {
    description?: string;
    handler(args: string, ctx: ExtensionCommandContext): Promise<void> | void;
  }

  export interface ExtensionAPI {
    on<E extends keyof ExtensionEventMap>(
      event: E,
      handler: (event: ExtensionEventMap[E], ctx: ExtensionContext) => Promise<void> | void,
    ): void;
    registerCommand(name: string, command: RegisteredCommand): void;
    exec(command: string, args: string[], options?: ExecOptions): Promise<ExecResult>;
    sendUserMessage(content: string, options?: { deliverAs?: "steer" | "followUp" }): void;
  }
}
