// The TypeScript MCP SDK's client against this server over stdio: it validates every tool
// result's structuredContent against the tool's outputSchema (and throws when one does not
// match). Prints what it saw as JSON.
//
//   node ts_client.mjs SDK_NODE_MODULES SERVER_PYTHON   (the environment says where Wiro is)
import { createRequire } from "node:module";
import path from "node:path";

const [sdkModules, serverPython] = process.argv.slice(2);
const require = createRequire(path.join(sdkModules, "resolve-from-here.js"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

const env = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name.startsWith("WIRO_") || name === "PATH"),
);
const transport = new StdioClientTransport({ command: serverPython, args: ["-m", "wiro_seedream_mcp"], env });
const client = new Client({ name: "ts-sdk-check", version: "1.0.0" });
await client.connect(transport);

const report = { tools: [], calls: [] };
const { tools } = await client.listTools();
report.tools = tools.map((tool) => ({ name: tool.name, outputSchema: Boolean(tool.outputSchema) }));

async function call(name, args, options = {}) {
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, options);
    const data = result.structuredContent ?? {};
    report.calls.push({ name, ok: true, isError: Boolean(result.isError), taskid: data.taskid ?? null, status: data.status ?? null, succeeded: data.succeeded ?? null, source: data.source ?? null });
    return data;
  } catch (error) {
    report.calls.push({ name, ok: false, error: String(error) });
    return {};
  }
}

// The client's own time limit runs out mid-task; then the same call again, with time enough.
const inputs = { prompt: "a glass greenhouse in the rain", seed: 31 };
await call("generate_image", inputs, { timeout: 1000 });
const made = await call("generate_image", inputs, { timeout: 60000 });
// Task ids as numbers, as clients and models send them.
await call("get_task", { taskid: Number(made.taskid) });
await call("list_tasks", { limit: 5 });
await call("estimate_cost", { size: "1280x720" });
const started = await call("generate_image", { prompt: "a second image", seed: 32, wait: false });
await call("kill_task", { taskid: Number(started.taskid) });
// Refused arguments are results too, with isError and no structured output to check.
await call("generate_image", { prompt: "x", size: "999x999" });
await client.close();
console.log(JSON.stringify(report));
