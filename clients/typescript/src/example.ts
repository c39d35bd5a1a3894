// Every operation of the standard, called with a minimal request built from the types openapi-typescript
// generates from spec/openapi.json, its response read through the same types; runs against a live server.
// Usage: node dist/example.js BASE_URL ADMIN_KEY PACKAGE_DIR SIGNER_PEM
//   PACKAGE_DIR holds a new version of the served chat model (llmos-package.json and its files), signed by the
//   key whose public PEM is SIGNER_PEM: model-signing bundles are made in Python (tests/test_typescript_stubs.py).
// Prints `ok <operationId>` once per operation (`skip <operationId> (needs <profile>)` for the trust and audit
// verification operations when discovery claims no security-strict); at the first mismatch `FAIL <operationId>: ...`, exit 1.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { components, operations, paths } from "./llmos.js";

type Schemas = components["schemas"];
type OperationId = keyof operations;
type Path = keyof paths;
type Method = "get" | "put" | "post" | "delete" | "head";
/** The methods the document defines on a path (the others are `?: never` there). */
type MethodOf<P extends Path> = { [M in Method]: paths[P][M] extends undefined ? never : M }[Method];
type Op<P extends Path, M extends Method> = NonNullable<paths[P][M]>;
type Responses<P extends Path, M extends Method> = Op<P, M> extends { responses: infer R } ? R : never;
type Status<P extends Path, M extends Method> = keyof Responses<P, M> & number;
/** The bodies a response with status S carries, by media type (never when the document declares none). */
type Media<P extends Path, M extends Method, S extends Status<P, M>> = Responses<P, M>[S] extends { content: infer C } ? C : never;
type JsonOf<C> = C extends { "application/json": infer B } ? B : never;
type PathArg<P extends Path, M extends Method> = Op<P, M> extends { parameters: { path: infer X } } ? { path: X } : { path?: never };
/** A JSON body exactly as the request schema says; a body of another media type as text or bytes. */
type BodyArg<C> = [C] extends [never] ? { json?: never } : C extends { "application/json": infer J } ? { json: J } : { raw: { type: keyof C & string; data: string | Uint8Array<ArrayBuffer> } };
type Args<P extends Path, M extends Method> = PathArg<P, M> & BodyArg<Op<P, M> extends { requestBody: { content: infer C } } ? C : never>;
/** No argument object where the operation takes neither path parameters nor a body. */
type Rest<P extends Path, M extends Method> = {} extends Args<P, M> ? [args?: Args<P, M>] : [args: Args<P, M>];

class Mismatch extends Error {
  constructor(readonly op: OperationId, message: string) {
    super(message);
  }
}

function argument(index: number): string {
  const value = process.argv[2 + index];
  if (!value) throw new Error("usage: example.js BASE_URL ADMIN_KEY PACKAGE_DIR SIGNER_PEM");
  return value;
}
const [base, key, packageDir, signerPem] = [argument(0), argument(1), argument(2), argument(3)];

/** Sends one request; the status must be one of `expect` and, for a body, the media type `accept`. */
async function send<P extends Path, M extends MethodOf<P>, S extends Status<P, M>>(
  op: OperationId, method: M, path: P, expect: S | readonly S[], accept: string | null, ...[args]: Rest<P, M>
): Promise<Response> {
  const given = (args ?? {}) as { path?: Record<string, string>; json?: unknown; raw?: { type: string; data: string | Uint8Array<ArrayBuffer> } };
  const url = (path as string).replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(given.path?.[name] ?? ""));
  const headers: Record<string, string> = { Authorization: `Bearer ${key}` };
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (given.json !== undefined) [headers["Content-Type"], body] = ["application/json", JSON.stringify(given.json)];
  else if (given.raw !== undefined) [headers["Content-Type"], body] = [given.raw.type, given.raw.data];
  const response = await fetch(base + url, { method: method.toUpperCase(), headers, body });
  const wanted: readonly number[] = typeof expect === "number" ? [expect] : expect;
  const media = response.headers.get("content-type") ?? "";
  if (!wanted.includes(response.status) || (accept !== null && !media.startsWith(accept))) {
    throw new Mismatch(op, `${method.toUpperCase()} ${url} answered ${response.status} ${media}, not ${wanted.join(" or ")} ${accept ?? ""}: ${await response.text()}`);
  }
  return response;
}

/** A JSON response, typed as the document declares the body of that status. */
async function call<P extends Path, M extends MethodOf<P>, S extends Status<P, M>>(
  op: OperationId, method: M, path: P, expect: S | readonly S[], ...args: Rest<P, M>
): Promise<JsonOf<Media<P, M, S>>> {
  return (await (await send(op, method, path, expect, "application/json", ...args)).json()) as JsonOf<Media<P, M, S>>;
}

/** JSON Lines, decoded to what the document types it as: the list of the lines' values. */
async function lines<P extends Path, M extends MethodOf<P>, S extends Status<P, M>>(
  op: OperationId, method: M, path: P, expect: S, ...args: Rest<P, M>
): Promise<Media<P, M, S>["application/jsonl" & keyof Media<P, M, S>]> {
  const body = await (await send(op, method, path, expect, "application/jsonl", ...args)).text();
  return body.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line)) as Media<P, M, S>["application/jsonl" & keyof Media<P, M, S>];
}

/** An `application/octet-stream` body: the document types it as a string; its bytes are what count. */
async function octets<P extends Path, M extends MethodOf<P>, S extends Status<P, M>>(
  op: OperationId, method: M, path: P, expect: S, ...args: Rest<P, M>
): Promise<{ data: Uint8Array<ArrayBuffer>; headers: Headers }> {
  const response = await send(op, method, path, expect, "application/octet-stream", ...args);
  return { data: new Uint8Array(await response.arrayBuffer()), headers: response.headers };
}

/** A stream's events: the document types each event ({data}); its data is JSON of the chunk type, or "[DONE]". */
async function events<P extends Path, M extends MethodOf<P>, S extends Status<P, M>, C>(
  op: OperationId, method: M, path: P, expect: S, ...args: Rest<P, M>
): Promise<Array<C | "[DONE]">> {
  const body = await (await send(op, method, path, expect, "text/event-stream", ...args)).text();
  const typed: Array<Media<P, M, S>["text/event-stream" & keyof Media<P, M, S>]> = body.split("\n")
    .filter((line) => line.startsWith("data: ")).map((line) => ({ data: line.slice("data: ".length) }) as Media<P, M, S>["text/event-stream" & keyof Media<P, M, S>]);
  return typed.map((event) => {
    const data = (event as { data: string }).data;
    return data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as C);
  });
}

// Every operation, so that one the document adds fails tsc here until the example calls it.
const EVERY_OPERATION: Record<OperationId, Schemas["DiscoveryDocument"]["profiles"][number]> = {
  get_discovery: "core", get_health_live: "core", get_health_ready: "core", get_openapi: "core", list_models: "core", retrieve_model: "core",
  create_completion: "inference", create_chat_completion: "inference", create_embedding: "embeddings", create_response: "responses", list_tasks: "tasks", run_task: "tasks",
  list_managed_models: "model-management", get_managed_model: "model-management", get_model_version: "model-management",
  load_model_version: "model-management", unload_model_version: "model-management", activate_model_version: "model-management",
  rollback_model: "model-management", head_blob: "model-packages", put_blob: "model-packages", get_blob: "model-packages", install_package: "model-packages",
  get_package: "model-packages", delete_model_version: "model-packages", create_dataset: "data-management", list_datasets: "data-management",
  get_dataset: "data-management", delete_dataset: "data-management", append_records: "data-management", list_dataset_versions: "data-management",
  query_dataset: "data-management", derive_dataset: "data-management", export_dataset: "data-management", get_operation: "data-management",
  get_principal: "security-baseline", create_key: "security-standard", list_keys: "security-standard", revoke_key: "security-standard",
  list_audit_events: "security-standard", verify_audit_chain: "security-strict", list_trusted_signers: "security-strict",
  add_trusted_signer: "security-strict", remove_trusted_signer: "security-strict",
};
const reported = new Set<OperationId>();

function report(op: OperationId, line: string): void {
  if (reported.has(op)) throw new Mismatch(op, "reported twice");
  reported.add(op);
  console.log(line);
}

/** `ok <op>` when every check holds, else the first one that does not. */
function ok(op: OperationId, checks: Record<string, boolean>): void {
  const failed = Object.entries(checks).find(([, holds]) => !holds);
  if (failed) throw new Mismatch(op, failed[0]);
  report(op, `ok ${op}`);
}

/** Reads until `done` holds (lifecycle actions and derives run in the background), for at most a minute. */
async function until<T>(op: OperationId, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Mismatch(op, `still not done: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sha256 = (data: string | Uint8Array<ArrayBuffer>): string => "sha256:" + createHash("sha256").update(data).digest("hex");

async function main(): Promise<void> {
  // core
  const discovery = await call("get_discovery", "get", "/.well-known/llmos", 200);
  ok("get_discovery", { "standard version 1.0": discovery.standard_version === "1.0", "claims core": discovery.profiles.includes("core") });
  const strict = discovery.profiles.includes("security-strict");
  ok("get_health_live", { "live": (await call("get_health_live", "get", "/llmos/v1/health/live", 200)).status === "ok" });
  ok("get_health_ready", { "ready": (await call("get_health_ready", "get", "/llmos/v1/health/ready", 200)).status === "ok" });
  const openapi = await call("get_openapi", "get", "/llmos/v1/openapi.json", 200);
  const documented = openapi["paths"];
  ok("get_openapi", { "OpenAPI 3.x": String(openapi["openapi"]).startsWith("3."), "lists /v1/models": typeof documented === "object" && documented !== null && "/v1/models" in documented });
  const models = await call("list_models", "get", "/v1/models", 200);
  const chatModel = models.data.find((m) => m.capabilities.includes("chat"));
  const embedModel = models.data.find((m) => m.capabilities.includes("embeddings"));
  if (!chatModel || !embedModel) throw new Mismatch("list_models", "no chat or no embeddings model is listed");
  ok("list_models", { "ready models": models.data.every((m) => m.state === "ready") });
  const chatName = chatModel.id;
  const one = await call("retrieve_model", "get", "/v1/models/{model}", 200, { path: { model: chatName } });
  const missing = await call("retrieve_model", "get", "/v1/models/{model}", 404, { path: { model: "not-served" } });
  ok("retrieve_model", { "same model": one.id === chatName && one.digest === chatModel.digest, "typed 404 envelope": missing.error.code === "model_not_found" });

  // security-baseline and security-standard: a key is created, listed and revoked; every change is audited.
  const me = await call("get_principal", "get", "/llmos/v1/principal", 200);
  ok("get_principal", { "admin key": me.scopes.includes("admin") });
  const newKey = await call("create_key", "post", "/llmos/v1/keys", 201, { json: { name: "typescript-example", scopes: ["models:read"] } });
  ok("create_key", { "secret shown once": newKey.secret.length > 0 && !newKey.revoked, "scopes as asked": newKey.scopes.join() === "models:read" });
  const keys = await call("list_keys", "get", "/llmos/v1/keys", 200);
  ok("list_keys", { "lists the new key": keys.data.some((k) => k.id === newKey.id), "no secret listed": !JSON.stringify(keys).includes(newKey.secret) });
  const revoked = await call("revoke_key", "delete", "/llmos/v1/keys/{key_id}", 200, { path: { key_id: newKey.id } });
  ok("revoke_key", { "deleted": revoked.deleted && revoked.id === newKey.id });
  const audit = await call("list_audit_events", "get", "/llmos/v1/audit/events", 200);
  ok("list_audit_events", { "events": audit.data.length > 0, "oldest first": audit.data.every((e, i) => i === 0 || e.seq > (audit.data[i - 1]?.seq ?? Infinity)) });

  // model-management and model-packages: the signed package is a new version of the chat model; it is installed,
  // loaded, activated, rolled back from, unloaded and deleted, so the version served at the start is served at the end.
  const managed = await call("get_managed_model", "get", "/llmos/v1/models/{name}", 200, { path: { name: chatName } });
  const served = managed.active_version;
  if (served === null) throw new Mismatch("get_managed_model", "the chat model has no active version");
  const servedVersion = await call("get_model_version", "get", "/llmos/v1/models/{name}/versions/{version}", 200, { path: { name: chatName, version: served } });
  ok("get_model_version", { "ready and active": servedVersion.state === "ready" && servedVersion.active, "digest as listed": servedVersion.digest === chatModel.digest });
  const servedPackage = await call("get_package", "get", "/llmos/v1/packages/{digest}", 200, { path: { digest: servedVersion.digest } });
  ok("get_package", { "the served version's manifest": servedPackage.name === chatName && servedPackage.version === served });

  // New bytes on every run, so the first HEAD is a 404 and the PUT a 201 even on a server that ran this before.
  const blob = `a blob from the TypeScript example, ${Date.now()}\n`;
  const blobPath = { path: { digest: sha256(blob) } };
  await send("head_blob", "head", "/llmos/v1/blobs/{digest}", 404, null, blobPath);
  const stored = await call("put_blob", "put", "/llmos/v1/blobs/{digest}", 201, { ...blobPath, raw: { type: "application/octet-stream", data: blob } });
  ok("put_blob", { "digest and size": stored.digest === sha256(blob) && stored.size === Buffer.byteLength(blob) });
  const head = await send("head_blob", "head", "/llmos/v1/blobs/{digest}", 200, null, blobPath);
  ok("head_blob", { "Content-Length is the size": head.headers.get("content-length") === String(stored.size) });
  const downloaded = await octets("get_blob", "get", "/llmos/v1/blobs/{digest}", 200, blobPath);
  // What a replica or mirror does: the manifest by its digest (above), then every file by its digest, each verified.
  const files: Uint8Array<ArrayBuffer>[] = [];
  for (const file of servedPackage.files) files.push((await octets("get_blob", "get", "/llmos/v1/blobs/{digest}", 200, { path: { digest: file.digest } })).data);
  const unknownBlob = await call("get_blob", "get", "/llmos/v1/blobs/{digest}", 404, { path: { digest: sha256(blob + "never put") } });
  ok("get_blob", {
    "the bytes put": Buffer.from(downloaded.data).equals(Buffer.from(blob)),
    "ETag is the quoted digest": downloaded.headers.get("etag") === `"${stored.digest}"`,
    "every file of the served package verifies": files.length > 0 && files.every((data, i) => sha256(data) === servedPackage.files[i]?.digest),
    "typed 404 envelope": unknownBlob.error.code === "blob_unknown",
  });

  const manifest = JSON.parse(readFileSync(join(packageDir, "llmos-package.json"), "utf8")) as Schemas["PackageManifest"];
  for (const file of manifest.files) {  // upload what the server lacks (here nothing: the files are the served version's)
    const there = await send("head_blob", "head", "/llmos/v1/blobs/{digest}", [200, 404], null, { path: { digest: file.digest } });
    if (there.status === 404) await call("put_blob", "put", "/llmos/v1/blobs/{digest}", 201, { path: { digest: file.digest }, raw: { type: "application/octet-stream", data: readFileSync(join(packageDir, file.path)) } });
  }
  const pem = readFileSync(signerPem, "utf8");
  const newSigner: Schemas["SignerCreateRequest"] = { key_id: createHash("sha256").update(pem).digest("hex"), public_key: pem };
  let signer: Schemas["TrustedSigner"] | undefined;
  if (strict) {
    signer = await call("add_trusted_signer", "post", "/llmos/v1/trust/signers", 201, { json: newSigner });
    ok("add_trusted_signer", { "added through the API": signer.source === "api" && signer.key_id === newSigner.key_id });
    const signers = await call("list_trusted_signers", "get", "/llmos/v1/trust/signers", 200);
    ok("list_trusted_signers", { "lists it": signers.data.some((s) => s.id === signer?.id) });
  }
  const installed = await call("install_package", "post", "/llmos/v1/packages", 201, { json: manifest });
  ok("install_package", { "installed, not active": installed.name === chatName && installed.version === manifest.version && installed.state === "installed" && !installed.active });
  const next = { path: { name: chatName, version: manifest.version } };
  const version = () => call("get_model_version", "get", "/llmos/v1/models/{name}/versions/{version}", 200, next);
  const loading = await call("load_model_version", "post", "/llmos/v1/models/{name}/versions/{version}/load", 202, next);
  const loaded = await until("load_model_version", version, (v) => v.state !== "loading");
  ok("load_model_version", { "accepted": ["loading", "ready"].includes(loading.state), "ready": loaded.state === "ready" && !loaded.active });
  await call("activate_model_version", "post", "/llmos/v1/models/{name}/versions/{version}/activate", 202, next);
  const active = await until("activate_model_version", version, (v) => v.active && v.state !== "loading");
  ok("activate_model_version", { "ready and active": active.state === "ready" });
  const back = await call("rollback_model", "post", "/llmos/v1/models/{name}/rollback", 202, { path: { name: chatName } });
  ok("rollback_model", { "back to the version served before": back.version === served && back.active });
  await call("unload_model_version", "post", "/llmos/v1/models/{name}/versions/{version}/unload", 202, next);
  const unloaded = await until("unload_model_version", version, (v) => v.state !== "unloading");
  ok("unload_model_version", { "installed again": unloaded.state === "installed" && !unloaded.active });
  const gone = await call("delete_model_version", "delete", "/llmos/v1/models/{name}/versions/{version}", 200, next);
  ok("delete_model_version", { "deleted": gone.deleted && gone.id === `${chatName}@${manifest.version}` });
  if (strict && signer) {
    const untrusted = await call("remove_trusted_signer", "delete", "/llmos/v1/trust/signers/{signer_id}", 200, { path: { signer_id: signer.id } });
    ok("remove_trusted_signer", { "removed": untrusted.deleted && untrusted.id === signer.id });
  }
  const after = await call("get_managed_model", "get", "/llmos/v1/models/{name}", 200, { path: { name: chatName } });
  ok("get_managed_model", { "served version active again": after.active_version === served, "history kept": after.history.length >= managed.history.length + 2 });
  const all = await call("list_managed_models", "get", "/llmos/v1/models", 200);
  ok("list_managed_models", { "lists both models": [chatName, embedModel.id].every((n) => all.data.some((m) => m.name === n)) });

  // inference, embeddings and tasks, on the version the rollback restored. Minimal requests: the required fields,
  // plus a small max_tokens to keep the run short (every other field is optional in the generated types).
  const completion: Schemas["CompletionRequest"] = { model: chatName, prompt: [5, 6, 7], max_tokens: 2 };
  const completed = await call("create_completion", "post", "/v1/completions", 200, { json: completion });
  ok("create_completion", { "prompt of 3 token ids": completed.usage.prompt_tokens === 3, "one choice": completed.choices.length === 1 });
  const chat: Schemas["ChatCompletionRequest"] = { model: chatName, messages: [{ role: "user", content: "hi" }], max_tokens: 3 };
  const answer = await call("create_chat_completion", "post", "/v1/chat/completions", 200, { json: chat });
  const streamed = await events<"/v1/chat/completions", "post", 200, Schemas["ChatCompletionChunk"]>("create_chat_completion", "post", "/v1/chat/completions", 200, { json: { ...chat, stream: true } });
  const chunks = streamed.filter((event): event is Schemas["ChatCompletionChunk"] => event !== "[DONE]" && event.object === "chat.completion.chunk");
  ok("create_chat_completion", {
    "assistant answer": answer.choices[0]?.message.role === "assistant" && answer.usage.completion_tokens <= 3,
    "stream ends with data: [DONE]": streamed.at(-1) === "[DONE]",
    "chunks only before it": chunks.length === streamed.length - 1 && chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]?.id),
  });
  const embedding: Schemas["EmbeddingRequest"] = { model: embedModel.id, input: ["a", "b"] };
  const vectors = await call("create_embedding", "post", "/v1/embeddings", 200, { json: embedding });
  ok("create_embedding", { "one vector per input": vectors.data.map((d) => d.index).join() === "0,1" });
  const request: Schemas["ResponseCreateRequest"] = { model: chatName, input: "hi", max_output_tokens: 3 };
  const responded = await call("create_response", "post", "/v1/responses", 200, { json: request });
  ok("create_response", {
    "a response": responded.object === "response" && ["completed", "incomplete"].includes(responded.status),
    "one message": responded.output.length === 1 && responded.output[0]?.type === "message",
    "usage adds up": responded.usage !== undefined && responded.usage !== null && responded.usage.total_tokens === responded.usage.input_tokens + responded.usage.output_tokens,
  });
  const tasks = await call("list_tasks", "get", "/llmos/v1/tasks", 200);
  ok("list_tasks", { "summarize offered by the chat model": tasks.data.some((t) => t.name === "summarize" && t.models.includes(chatName)) });
  const summary: Schemas["TaskRequest"] = { model: chatName, input: "The cat slept in the sun by the window all day.", max_tokens: 4 };
  const summarized = await call("run_task", "post", "/llmos/v1/tasks/{task}", 200, { path: { task: "summarize" }, json: summary });
  ok("run_task", { "one summary": summarized.task === "summarize" && summarized.results.length === 1 && summarized.results[0]?.index === 0 });

  // data-management: a dataset, two records, a query, a derived lowercase version exported as JSON Lines.
  const dataset = await call("create_dataset", "post", "/llmos/v1/datasets", 201, { json: { name: "typescript-example" } });
  ok("create_dataset", { "empty": dataset.record_count === 0 && dataset.name === "typescript-example" });
  const ds = { path: { dataset_id: dataset.id } };
  const listed = await call("list_datasets", "get", "/llmos/v1/datasets", 200);
  ok("list_datasets", { "lists it": listed.data.some((d) => d.id === dataset.id) });
  const appended = await call("append_records", "post", "/llmos/v1/datasets/{dataset_id}/records", 200, { ...ds, json: { records: [{ text: "Hello World" }, { text: "LOUD Cat" }] } });
  ok("append_records", { "two records": appended.appended === 2 && appended.record_count === 2 });
  const fetched = await call("get_dataset", "get", "/llmos/v1/datasets/{dataset_id}", 200, ds);
  ok("get_dataset", { "latest version": fetched.version === appended.version && fetched.record_count === 2 });
  const versions = await call("list_dataset_versions", "get", "/llmos/v1/datasets/{dataset_id}/versions", 200, ds);
  ok("list_dataset_versions", { "ends with the append": versions.data.at(-1)?.version === appended.version && versions.data.at(-1)?.operation === "append" });
  const query: Schemas["QueryRequest"] = {};
  const page = await call("query_dataset", "post", "/llmos/v1/datasets/{dataset_ref}/query", 200, { path: { dataset_ref: dataset.id }, json: query });
  ok("query_dataset", { "both records": page.data.map((r) => r.data["text"]).join("|") === "Hello World|LOUD Cat" && page.version === appended.version });
  const derive: Schemas["DeriveDatasetRequest"] = { pipeline: [{ op: "lowercase", field: "text" }] };
  const started = await call("derive_dataset", "post", "/llmos/v1/datasets/{dataset_ref}/derive", 202, { path: { dataset_ref: `${dataset.id}@${appended.version}` }, json: derive });
  ok("derive_dataset", { "a derive operation": started.kind === "derive" });
  const operation = await until("get_operation", () => call("get_operation", "get", "/llmos/v1/operations/{operation_id}", 200, { path: { operation_id: started.id } }), (o) => o.status !== "running");
  ok("get_operation", { "succeeded": operation.status === "succeeded" && operation.result !== null });
  const ref = operation.result ? `${operation.result.dataset_id}@${operation.result.version}` : dataset.id;
  const records = await lines("export_dataset", "get", "/llmos/v1/datasets/{dataset_ref}/export", 200, { path: { dataset_ref: ref } });
  ok("export_dataset", { "lowercased records": records.map((r) => r["text"]).join("|") === "hello world|loud cat" });
  const dropped = await call("delete_dataset", "delete", "/llmos/v1/datasets/{dataset_id}", 200, ds);
  ok("delete_dataset", { "deleted": dropped.deleted && dropped.id === dataset.id });

  // security-strict: the audit chain over everything above.
  if (strict) {
    const chain = await call("verify_audit_chain", "get", "/llmos/v1/audit/verify", 200);
    ok("verify_audit_chain", { "valid": chain.valid && chain.first_bad_seq === null && chain.events >= audit.data.length });
  }
  for (const [op, profile] of Object.entries(EVERY_OPERATION) as [OperationId, string][]) {
    if (!reported.has(op) && profile === "security-strict" && !strict) report(op, `skip ${op} (needs security-strict)`);
    else if (!reported.has(op)) throw new Mismatch(op, "not exercised");
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof Mismatch)) throw error;
  console.log(`FAIL ${error.op}: ${error.message}`);
  process.exitCode = 1;
}
