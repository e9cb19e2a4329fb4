/**
 * What a tool is: a typed definition (name, schemas, annotations, handler) and the context its
 * handler receives. Tools never touch the MCP SDK; sdk.ts registers them from the one array in
 * tools/index.ts.
 */
import type { z } from 'zod';
import type { Logger } from '../../lib/logger.js';
import type { KubeClient } from './kube.js';

/** MCP tool annotations (hints to clients; gating is enforced by `readOnly` at call time). */
export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** Facade settings shared by every call. */
export interface FacadeSettings {
  /** Namespace of new GPUDiagnostics when the call names none. */
  readonly namespace: string;
  /** Where the agent pods run, and their labels (for list_gpu_nodes). */
  readonly agentNamespace: string;
  readonly agentSelector: string;
  /** ttlSecondsAfterFinished of the GPUDiagnostics the facade creates. */
  readonly ttlSecondsAfterFinished: number;
  /** How often a waiting tool re-reads its GPUDiagnostic when the caller may not watch it (it watches otherwise). */
  readonly pollIntervalMs: number;
  /** Default wait for a diagnostic before answering with its progress so far. */
  readonly defaultWaitSeconds: number;
  /** Refuse every tool that writes (GPUDiagnostic creation). */
  readonly readOnly: boolean;
}

/** What a handler gets besides its arguments. */
export interface ToolContext {
  /** The API server as the caller (their RBAC applies). */
  readonly kube: KubeClient;
  readonly settings: FacadeSettings;
  /** Fires when the client cancels the call or the transport closes. */
  readonly signal: AbortSignal;
  /**
   * Fires when the server shuts down (operator SIGTERM): a waiting tool answers with what it
   * has at once, and keeps what it created (the next leader finishes it).
   */
  readonly stopping: AbortSignal;
  /** Reports progress to the client (a no-op when it sent no progressToken). */
  progress(done: number, total: number, message: string): Promise<void>;
  readonly logger: Logger;
  now(): Date;
}

/** A handler's answer: structured data matching the output schema, and a short text summary. */
export interface ToolOutput<T> {
  structured: T;
  text: string;
}

/** The typed definition each tools/<tool>.ts writes. */
export interface ToolDefinition<I extends z.ZodObject, O extends z.ZodObject> {
  name: string;
  title: string;
  description: string;
  inputSchema: I;
  outputSchema: O;
  annotations: ToolAnnotations;
  /** True when the tool only reads; false tools are hidden and refused in read-only mode. */
  readOnly: boolean;
  handler(args: z.output<I>, ctx: ToolContext): Promise<ToolOutput<z.output<O>>>;
}

/** A definition with its types erased, as the registry holds it. */
export interface McpTool {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: z.ZodObject;
  readonly outputSchema: z.ZodObject;
  readonly annotations: ToolAnnotations;
  readonly readOnly: boolean;
  /** Parses the arguments with the input schema (no casts) and runs the handler. */
  call(args: unknown, ctx: ToolContext): Promise<ToolOutput<Record<string, unknown>>>;
}

/** Checks a tool definition's types and erases them for the registry. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(def: ToolDefinition<I, O>): McpTool {
  return {
    name: def.name,
    title: def.title,
    description: def.description,
    inputSchema: def.inputSchema,
    outputSchema: def.outputSchema,
    annotations: def.annotations,
    readOnly: def.readOnly,
    async call(args, ctx) {
      const parsed = def.inputSchema.parse(args ?? {});
      const out = await def.handler(parsed, ctx);
      return { structured: out.structured, text: out.text };
    },
  };
}

/** Annotations of a tool that only reads the cluster. */
export const READ_ONLY: ToolAnnotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };
/** Annotations of a tool that creates a GPUDiagnostic (adds an object, never changes or deletes existing ones). */
export const CREATES_DIAGNOSTIC: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
};
