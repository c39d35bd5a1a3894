// Builds minimal requests with the generated types and reads the responses from a live server.
// Usage: node dist/example.js BASE_URL API_KEY   (prints one line per call; exits 1 on any mismatch)
import type { components, paths } from "./llmos.js";

type Schemas = components["schemas"];
type Json<P extends keyof paths, M extends "get" | "post"> = paths[P][M] extends { responses: { 200: { content: { "application/json": infer B } } } } ? B : never;

const [base, key] = process.argv.slice(2);
if (!base || !key) throw new Error("usage: example.js BASE_URL API_KEY");
const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };

async function call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as T };
}

function check(ok: boolean, what: string): void {
  console.log(`${ok ? "ok" : "FAIL"} ${what}`);
  if (!ok) process.exitCode = 1;
}

const discovery = await call<Schemas["DiscoveryDocument"]>("GET", "/.well-known/llmos");
check(discovery.json.standard_version === "1.0", "discovery");
const models = await call<Json<"/v1/models", "get">>("GET", "/v1/models");
const chatModel = models.json.data.find((m) => m.capabilities.includes("chat"));
const embedModel = models.json.data.find((m) => m.capabilities.includes("embeddings"));
if (!chatModel || !embedModel) throw new Error("the server lists no chat or embeddings model");
check(models.json.data.length > 0, "list models");
const one = await call<Schemas["ModelObject"]>("GET", `/v1/models/${chatModel.id}`);
check(one.json.id === chatModel.id, "retrieve model");

// Minimal requests: only the required fields (optional ones must not be required by the types).
const chat: Schemas["ChatCompletionRequest"] = { model: chatModel.id, messages: [{ role: "user", content: "hi" }], max_tokens: 3 };
const chatAnswer = await call<Schemas["ChatCompletionResponse"]>("POST", "/v1/chat/completions", chat);
check(chatAnswer.json.choices[0]?.message.role === "assistant", "chat completion");
const completion: Schemas["CompletionRequest"] = { model: chatModel.id, prompt: [5, 6, 7], max_tokens: 2 };
const completionAnswer = await call<Schemas["CompletionResponse"]>("POST", "/v1/completions", completion);
check(completionAnswer.json.usage.prompt_tokens === 3, "completion from token ids");
const embedding: Schemas["EmbeddingRequest"] = { model: embedModel.id, input: ["a", "b"] };
const vectors = await call<Schemas["EmbeddingResponse"]>("POST", "/v1/embeddings", embedding);
check(vectors.json.data.map((d) => d.index).join(",") === "0,1", "embeddings");
const managed = await call<Schemas["ManagedModelList"]>("GET", "/llmos/v1/models");
check(managed.json.data.some((m) => m.name === chatModel.id), "managed models");
const refused = await call<Schemas["ErrorEnvelope"]>("POST", "/v1/chat/completions", { ...chat, model: "acme/not-served" });
check(refused.status === 404 && refused.json.error.code === "model_not_found", "typed error envelope");
