/**
 * The only module that imports @modelcontextprotocol/sdk (v1 line), so moving to v2 touches one
 * place. It registers the tools, prompts and resources from their arrays on an McpServer bound
 * to one caller's KubeClient, and offers the two transports (stdio, stateless Streamable HTTP).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult, GetPromptResult, ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { ToolError } from './errors.js';
import type { KubeClient } from './kube.js';
import type { McpPrompt } from './prompts.js';
import type { McpResource } from './resources.js';
import type { FacadeSettings, McpTool, ToolContext } from './tool.js';
import { UNTRUSTED_NOTE } from './views.js';

/** Everything a facade server instance serves, and as whom. */
export interface FacadeServerOptions {
  name: string;
  version: string;
  tools: readonly McpTool[];
  prompts: readonly McpPrompt[];
  resources: readonly McpResource[];
  settings: FacadeSettings;
  /** The API server as the caller of this server instance. */
  kube: KubeClient;
  logger: Logger;
  /** Fires when the hosting server shuts down (waiting tools answer with their progress). */
  stopping?: AbortSignal;
}

/** A facade server: connect it to one transport, close it when done. */
export interface FacadeServer {
  /** Serves the process's stdin/stdout; resolves once connected. */
  connectStdio(): Promise<void>;
  /** Serves one HTTP request statelessly (this server instance serves only that request). */
  handleHttp(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void>;
  /** Called once when the transport closes (stdio: the client went away). */
  onClose(listener: () => void): void;
  close(): Promise<void>;
}

const INSTRUCTIONS = `gpudiag diagnoses NVIDIA GPUs on Kubernetes nodes. Tools that need fresh data create a GPUDiagnostic
(an auditable object in the cluster, made with the caller's own RBAC) and wait for it. ${UNTRUSTED_NOTE}`;

/** Pause after each progress notification (see the progress function). */
const PROGRESS_GAP_MS = 20;

/** How long close() waits for cancelled calls to delete their GPUDiagnostics. */
const CLOSE_GRACE_MS = 15_000;

function textResult(text: string, structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: structured };
}

/** Builds a facade server for one caller. */
export function createFacadeServer(options: FacadeServerOptions): FacadeServer {
  const server = new McpServer(
    { name: options.name, version: options.version },
    { capabilities: { tools: {}, prompts: {}, resources: {} }, instructions: INSTRUCTIONS, maxToolInputElements: 2_000 },
  );
  const { settings, kube } = options;
  const stopping = options.stopping ?? new AbortController().signal;
  // Calls in flight, so close() can wait for cancelled calls to clean up their GPUDiagnostics.
  const inflight = new Set<Promise<unknown>>();

  for (const tool of options.tools) {
    const registered = server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.inputSchema,
        outputSchema: tool.outputSchema,
        annotations: { title: tool.title, ...tool.annotations },
      },
      async (args: unknown, extra): Promise<CallToolResult> => {
        // Enforced here as well as by hiding the tool: a read-only server never runs a write.
        if (settings.readOnly && !tool.readOnly) throw new ToolError(`${tool.name} is refused: this gpudiag MCP server is read-only`);
        const progressToken = extra._meta?.progressToken;
        const logger = options.logger.child({ tool: tool.name, caller: kube.identity.user, requestId: String(extra.requestId) });
        const ctx: ToolContext = {
          kube,
          settings,
          signal: extra.signal,
          stopping,
          logger,
          now: () => new Date(),
          async progress(done, total, message) {
            if (progressToken === undefined) return;
            await extra
              .sendNotification({ method: 'notifications/progress', params: { progressToken, progress: done, total, message } })
              .catch((err: unknown) => {
                logger.debug('cannot send progress', errorFields(err));
              });
            // SDK clients dispatch notifications a microtask later but responses at once: a
            // progress notification read in the same chunk as the result would find its handler
            // gone. A short pause keeps the last progress ahead of the result.
            await new Promise((resolve) => setTimeout(resolve, PROGRESS_GAP_MS));
          },
        };
        const started = Date.now();
        const call = tool.call(args, ctx);
        inflight.add(call);
        try {
          const out = await call;
          logger.info('tool call completed', { durationMs: Date.now() - started });
          return textResult(out.text, out.structured);
        } catch (err) {
          logger.info('tool call failed', { durationMs: Date.now() - started, ...errorFields(err) });
          throw err;
        } finally {
          inflight.delete(call);
        }
      },
    );
    // Read-only mode: the write tools are neither listed nor callable (the SDK refuses disabled tools).
    if (settings.readOnly && !tool.readOnly) registered.disable();
  }

  for (const prompt of options.prompts) {
    server.registerPrompt(
      prompt.name,
      { title: prompt.title, description: prompt.description, argsSchema: prompt.argsSchema },
      (args: Record<string, unknown>): GetPromptResult => ({
        description: prompt.description,
        messages: [{ role: 'user', content: { type: 'text', text: prompt.build(args, settings) } }],
      }),
    );
  }

  for (const resource of options.resources) {
    const read = async (uri: URL, variables: Record<string, string | string[]>, signal: AbortSignal): Promise<ReadResourceResult> => {
      const text = await resource.read(variables, { kube, settings, signal, logger: options.logger });
      return { contents: [{ uri: uri.href, mimeType: resource.mimeType, text }] };
    };
    const metadata = { title: resource.title, description: resource.description, mimeType: resource.mimeType };
    if (resource.uriTemplate.includes('{')) {
      server.registerResource(
        resource.name,
        new ResourceTemplate(resource.uriTemplate, { list: undefined }),
        metadata,
        (uri, variables, extra) => read(uri, variables, extra.signal),
      );
    } else {
      server.registerResource(resource.name, resource.uriTemplate, metadata, (uri, extra) => read(uri, {}, extra.signal));
    }
  }

  let closeListener: (() => void) | undefined;
  server.server.onclose = () => closeListener?.();
  return {
    async connectStdio(): Promise<void> {
      await server.connect(new StdioServerTransport());
    },
    async handleHttp(req, res, body): Promise<void> {
      // No sessionIdGenerator: stateless mode (each request gets its own server and transport).
      const transport = new StreamableHTTPServerTransport({});
      // A client that goes away (or cancels by dropping the connection) aborts the call.
      res.on('close', () => {
        void server.close().catch((err: unknown) => options.logger.debug('closing an MCP request server failed', errorFields(err)));
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    },
    onClose(listener): void {
      closeListener = listener;
    },
    async close(): Promise<void> {
      await server.close();
      if (inflight.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_GRACE_MS);
      });
      await Promise.race([Promise.allSettled([...inflight]), grace]);
      clearTimeout(timer);
    },
  };
}
