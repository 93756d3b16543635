// The host side of MCP Apps for the browser tests, bundled by esbuild into one script.
export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";
