// agentflow.ts — the AgentFlow agent ABI v1 for AssemblyScript.
//
// An agent is a WASI preview1 command module (build it with @assemblyscript/wasi-shim, whose
// asconfig.json exports `_start` and maps `process` and `console` to WASI):
//
//   stdin   one JSON document
//             {"input": ..., "upstream": {"<step>": <output>, ...},
//              "step": {"run": "<run id>", "name": "<step name>", "attempt": <int>, "workflow": "..."}}
//   stdout  exactly one JSON value: the step's output
//   stderr  free-form log lines (kept with the step, capped)
//   exit    0 = success; a non-zero exit code (exit(), or abort() from a `throw`) = failure
//
// Host calls go through two imports from the module "agentflow":
//
//   host_call(op_ptr, op_len, req_ptr, req_len): i64   length of the JSON response, or ERR_*
//   host_result(buf_ptr, buf_len): i32                 copies the pending response
//
// What this file offers:
//
//   stdin / stdout   readStdin, readInput, writeOutput, exit, fail
//   JSON             Json (parse, path, get, at, set, push, stringify), parseJson, quote,
//                    jsonNull, jsonBool, jsonNumber, jsonString, jsonArray, jsonObject
//   host calls       hostCall, log, llmComplete, httpFetch, httpRequest
//   errors           OK, ERR_* (every code the host returns), errorName, AgentflowError
//
// Write the agent inside a function (see the scaffold's main()): AssemblyScript narrows a
// `Json | null` after `if (v === null) ...` for local variables only, not for globals.
//
// This file is shipped by the agentflow package (agentflow/authoring/assemblyscript/) and copied
// into each agent by `agentflow agent new NAME --lang assemblyscript`.

// ---- the raw imports ----------------------------------------------------------------------

// @ts-ignore: decorator
@external("agentflow", "host_call")
declare function host_call(opPtr: usize, opLen: i32, reqPtr: usize, reqLen: i32): i64;

// @ts-ignore: decorator
@external("agentflow", "host_result")
declare function host_result(bufPtr: usize, bufLen: i32): i32;

// ---- error codes returned by host_call / host_result --------------------------------------

export const OK: i32 = 0;
/** No such operation. */
export const ERR_UNKNOWN_OP: i32 = -1;
/** The step lacks the capability for this operation (or the model it asked for). */
export const ERR_DENIED: i32 = -2;
/** The request is not valid JSON, misses a field, names an unknown model, or bad pointers. */
export const ERR_BAD_REQUEST: i32 = -3;
/** Allowed but not served: no router reachable, no provider, a host that cannot be reached. */
export const ERR_UNAVAILABLE: i32 = -4;
/** host_result called with no pending response. */
export const ERR_NO_PENDING: i32 = -5;
/** Request or response over 1 MiB. */
export const ERR_TOO_LARGE: i32 = -6;
/** Host-side failure. */
export const ERR_INTERNAL: i32 = -7;
/** llm.complete: the step's or run's LLM budget would be exceeded. */
export const ERR_BUDGET_EXCEEDED: i32 = -8;
/** llm.complete: the model provider failed (after the router's retries and fallbacks). */
export const ERR_UPSTREAM: i32 = -9;
/** Over 1000 host calls a second: slow down (100,000 in all end the step). */
export const ERR_RATE_LIMITED: i32 = -10;

/** A short name for an ERR_* code, for messages. */
export function errorName(code: i64): string {
  switch (<i32>code) {
    case OK: return "ok";
    case ERR_UNKNOWN_OP: return "unknown operation";
    case ERR_DENIED: return "denied";
    case ERR_BAD_REQUEST: return "bad request";
    case ERR_UNAVAILABLE: return "unavailable";
    case ERR_NO_PENDING: return "nothing pending";
    case ERR_TOO_LARGE: return "too large";
    case ERR_INTERNAL: return "internal error";
    case ERR_BUDGET_EXCEEDED: return "budget exceeded";
    case ERR_UPSTREAM: return "model provider failed";
    case ERR_RATE_LIMITED: return "rate limited";
    default: return "error";
  }
}

/** A failed host call: which operation, and the negative ERR_* code the host returned. */
export class AgentflowError {
  constructor(public op: string, public code: i32) {}

  get name(): string {
    return errorName(this.code);
  }

  get denied(): bool {
    return this.code == ERR_DENIED;
  }

  /** e.g. "http.fetch failed: denied (-2)". */
  toString(): string {
    return this.op + " failed: " + this.name + " (" + this.code.toString() + ")";
  }
}

// ---- JSON ---------------------------------------------------------------------------------

export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** A JSON value: build one with jsonObject().set(...), read one with parseJson / path. */
export class Json {
  kind: JsonKind = JsonKind.Null;
  boolValue: bool = false;
  numberValue: f64 = 0;
  stringValue: string = "";
  items: Json[] = []; // array elements
  keys: string[] = []; // object member names, in order
  values: Json[] = []; // object member values

  isNull(): bool { return this.kind == JsonKind.Null; }
  isBool(): bool { return this.kind == JsonKind.Bool; }
  isNumber(): bool { return this.kind == JsonKind.Number; }
  isString(): bool { return this.kind == JsonKind.String; }
  isArray(): bool { return this.kind == JsonKind.Array; }
  isObject(): bool { return this.kind == JsonKind.Object; }

  /** The member `key` of an object, or null. */
  get(key: string): Json | null {
    if (this.kind != JsonKind.Object) return null;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] == key) return this.values[i];
    }
    return null;
  }

  /** Element `index` of an array, or null. */
  at(index: i32): Json | null {
    if (this.kind != JsonKind.Array || index < 0 || index >= this.items.length) return null;
    return this.items[index];
  }

  /** Follows a dotted path of member names and array indexes: "input.text", "upstream.fetch.words.0". */
  path(dotted: string): Json | null {
    let cur: Json | null = this;
    const parts = dotted.split(".");
    for (let i = 0; i < parts.length; i++) {
      if (cur === null) return null;
      const part = parts[i];
      const node: Json = cur;
      if (node.kind == JsonKind.Array) {
        const index = I32.parseInt(part);
        cur = part.length > 0 && index.toString() == part ? node.at(index) : null;
      } else {
        cur = node.get(part);
      }
    }
    return cur;
  }

  /** The string at `dotted`, or `fallback` when it is missing or not a string. */
  getString(dotted: string, fallback: string = ""): string {
    const v = this.path(dotted);
    return v !== null && v.kind == JsonKind.String ? v.stringValue : fallback;
  }

  /** The number at `dotted`, or `fallback`. */
  getNumber(dotted: string, fallback: f64 = 0): f64 {
    const v = this.path(dotted);
    return v !== null && v.kind == JsonKind.Number ? v.numberValue : fallback;
  }

  /** The boolean at `dotted`, or `fallback`. */
  getBool(dotted: string, fallback: bool = false): bool {
    const v = this.path(dotted);
    return v !== null && v.kind == JsonKind.Bool ? v.boolValue : fallback;
  }

  /** Sets (or replaces) an object member; returns this, for chaining. */
  set(key: string, value: Json): Json {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) {
        this.values[i] = value;
        return this;
      }
    }
    this.keys.push(key);
    this.values.push(value);
    return this;
  }

  setString(key: string, value: string): Json { return this.set(key, jsonString(value)); }
  setNumber(key: string, value: f64): Json { return this.set(key, jsonNumber(value)); }
  setBool(key: string, value: bool): Json { return this.set(key, jsonBool(value)); }

  /** Appends an array element; returns this. */
  push(value: Json): Json {
    this.items.push(value);
    return this;
  }

  /** The value as compact JSON text. */
  stringify(): string {
    switch (this.kind) {
      case JsonKind.Null: return "null";
      case JsonKind.Bool: return this.boolValue ? "true" : "false";
      case JsonKind.Number: return formatNumber(this.numberValue);
      case JsonKind.String: return quote(this.stringValue);
      case JsonKind.Array: {
        const parts = new Array<string>(this.items.length);
        for (let i = 0; i < this.items.length; i++) parts[i] = this.items[i].stringify();
        return "[" + parts.join(",") + "]";
      }
      default: {
        const parts = new Array<string>(this.keys.length);
        for (let i = 0; i < this.keys.length; i++) parts[i] = quote(this.keys[i]) + ":" + this.values[i].stringify();
        return "{" + parts.join(",") + "}";
      }
    }
  }

  toString(): string {
    return this.stringify();
  }
}

export function jsonNull(): Json {
  return new Json();
}

export function jsonBool(value: bool): Json {
  const j = new Json();
  j.kind = JsonKind.Bool;
  j.boolValue = value;
  return j;
}

export function jsonNumber(value: f64): Json {
  const j = new Json();
  j.kind = JsonKind.Number;
  j.numberValue = value;
  return j;
}

export function jsonString(value: string): Json {
  const j = new Json();
  j.kind = JsonKind.String;
  j.stringValue = value;
  return j;
}

export function jsonArray(): Json {
  const j = new Json();
  j.kind = JsonKind.Array;
  return j;
}

export function jsonObject(): Json {
  const j = new Json();
  j.kind = JsonKind.Object;
  return j;
}

function formatNumber(n: f64): string {
  if (!isFinite(n)) return "null"; // JSON has no NaN or Infinity
  if (n == Math.floor(n) && Math.abs(n) < 9007199254740992.0) return (<i64>n).toString();
  return n.toString();
}

const HEX = "0123456789abcdef";

/** `s` as a quoted JSON string literal, with quotes, backslashes and control characters escaped. */
export function quote(s: string): string {
  let out = "\"";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc = "";
    if (c == 0x22) esc = "\\\"";
    else if (c == 0x5c) esc = "\\\\";
    else if (c == 0x0a) esc = "\\n";
    else if (c == 0x0d) esc = "\\r";
    else if (c == 0x09) esc = "\\t";
    else if (c < 0x20) esc = "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else continue;
    out += s.substring(start, i) + esc;
    start = i + 1;
  }
  return out + s.substring(start) + "\"";
}

const MAX_DEPTH = 512;

class Parser {
  pos: i32 = 0;
  failed: bool = false;

  constructor(public text: string) {}

  skipWs(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  fail(): Json {
    this.failed = true;
    return jsonNull();
  }

  literal(word: string, value: Json): Json {
    if (this.text.substr(this.pos, word.length) != word) return this.fail();
    this.pos += word.length;
    return value;
  }

  value(depth: i32): Json {
    if (depth > MAX_DEPTH) return this.fail();
    this.skipWs();
    if (this.pos >= this.text.length) return this.fail();
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      return this.failed ? jsonNull() : jsonString(s);
    }
    if (c == 0x74) return this.literal("true", jsonBool(true));
    if (c == 0x66) return this.literal("false", jsonBool(false));
    if (c == 0x6e) return this.literal("null", jsonNull());
    return this.number();
  }

  number(): Json {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      // digits, '-', '+', '.', 'e', 'E'
      if ((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45) this.pos++;
      else break;
    }
    if (this.pos == start) return this.fail();
    const n = parseFloat(this.text.substring(start, this.pos));
    if (isNaN(n)) return this.fail();
    return jsonNumber(n);
  }

  hex4(): i32 {
    if (this.pos + 4 > this.text.length) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.text.charCodeAt(this.pos + i);
      let h = -1;
      if (c >= 0x30 && c <= 0x39) h = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) h = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) h = c - 0x41 + 10;
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    this.pos += 4;
    return v;
  }

  string(): string {
    this.pos++; // the opening quote
    let out = "";
    let start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x22) {
        out += this.text.substring(start, this.pos);
        this.pos++;
        return out;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.substring(start, this.pos);
      this.pos++;
      if (this.pos >= this.text.length) break;
      const e = this.text.charCodeAt(this.pos++);
      if (e == 0x6e) out += "\n";
      else if (e == 0x74) out += "\t";
      else if (e == 0x72) out += "\r";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x75) {
        const unit = this.hex4();
        if (unit < 0) break;
        out += String.fromCharCode(unit); // surrogate pairs arrive as two escapes: two units
      } else out += String.fromCharCode(e); // \" \\ \/
      start = this.pos;
    }
    this.failed = true;
    return "";
  }

  array(depth: i32): Json {
    const result = jsonArray();
    this.pos++;
    this.skipWs();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return result;
    }
    while (!this.failed) {
      result.items.push(this.value(depth + 1));
      this.skipWs();
      if (this.pos >= this.text.length) return this.fail();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x5d) return result;
      if (c != 0x2c) return this.fail();
    }
    return result;
  }

  object(depth: i32): Json {
    const result = jsonObject();
    this.pos++;
    this.skipWs();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return result;
    }
    while (!this.failed) {
      this.skipWs();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) return this.fail();
      const key = this.string();
      this.skipWs();
      if (this.failed || this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x3a) return this.fail();
      this.pos++;
      const value = this.value(depth + 1);
      result.keys.push(key);
      result.values.push(value);
      this.skipWs();
      if (this.pos >= this.text.length) return this.fail();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x7d) return result;
      if (c != 0x2c) return this.fail();
    }
    return result;
  }
}

/** Parses JSON text; null if it is not exactly one JSON value. */
export function parseJson(text: string): Json | null {
  const p = new Parser(text);
  const value = p.value(0);
  p.skipWs();
  if (p.failed || p.pos != text.length) return null;
  return value;
}

// ---- stdin, stdout, exit ------------------------------------------------------------------

/** All of stdin as a string (UTF-8 decoded). */
export function readStdin(): string {
  let data = new Uint8Array(0);
  const chunk = new ArrayBuffer(65536);
  for (;;) {
    const n = process.stdin.read(chunk);
    if (n <= 0) break;
    const bigger = new Uint8Array(data.length + n);
    bigger.set(data);
    bigger.set(Uint8Array.wrap(chunk, 0, n), data.length);
    data = bigger;
  }
  return String.UTF8.decode(data.buffer);
}

/** The step's stdin document {"input", "upstream", "step"}; exits with code 1 if it is not JSON. */
export function readInput(): Json {
  const doc = parseJson(readStdin());
  if (doc === null) {
    fail("stdin is not a JSON document", 1);
    return jsonNull();
  }
  return doc;
}

/** Writes the step's output (one JSON value) to stdout. */
export function writeOutput(value: Json): void {
  process.stdout.write(value.stringify() + "\n");
}

/** Ends the agent now with `code` (0 = success). */
export function exit(code: i32): void {
  process.exit(code);
}

/** Writes `message` to stderr (kept with the step, shown by `agentflow status`) and exits with `code`. */
export function fail(message: string, code: i32 = 1): void {
  process.stderr.write(message + "\n");
  process.exit(code);
}

// ---- host calls ---------------------------------------------------------------------------

/** What a host call answered: `error` is null on success, and `response` the JSON response text. */
export class HostResult {
  constructor(public error: AgentflowError | null, public response: string) {}

  get ok(): bool {
    return this.error === null;
  }

  /** The negative ERR_* code, or OK. */
  get code(): i32 {
    const e = this.error;
    return e === null ? OK : e.code;
  }

  /** The response parsed (null on error). */
  json(): Json | null {
    return this.error === null ? parseJson(this.response) : null;
  }
}

/** Calls host operation `op` ("log", "llm.complete", "http.fetch") with the JSON text `request`. */
export function hostCall(op: string, request: string): HostResult {
  const opBytes = String.UTF8.encode(op);
  const reqBytes = String.UTF8.encode(request);
  const n = host_call(changetype<usize>(opBytes), opBytes.byteLength, changetype<usize>(reqBytes), reqBytes.byteLength);
  if (n < 0) return new HostResult(new AgentflowError(op, <i32>n), "");
  const out = new ArrayBuffer(<i32>n);
  const got = host_result(changetype<usize>(out), <i32>n);
  if (got < 0) return new HostResult(new AgentflowError(op, got), "");
  return new HostResult(null, String.UTF8.decode(out.slice(0, got)));
}

/** Appends a line to the step's log; level is "debug", "info", "warn" or "error". Null on success. */
export function log(level: string, message: string): AgentflowError | null {
  const request = jsonObject().setString("level", level).setString("message", message);
  return hostCall("log", request.stringify()).error;
}

/** What llm.complete answered: `content` is the model's text; `response` the whole answer. */
export class Completion {
  constructor(public error: AgentflowError | null, public content: string, public response: Json | null) {}

  get ok(): bool {
    return this.error === null;
  }
}

/**
 * Asks the step's LLM (the step needs capabilities.llm; its llm: block gives the model,
 * temperature and maxTokens). Errors: ERR_DENIED (no capability, or a model not granted),
 * ERR_BUDGET_EXCEEDED, ERR_UPSTREAM (the provider failed), ERR_UNAVAILABLE (no router), ...
 * `model` ("" = the step's default) and `maxTokens` (0 = the default) override the step's llm: block.
 */
export function llmComplete(prompt: string, model: string = "", maxTokens: i32 = 0): Completion {
  const request = jsonObject().setString("prompt", prompt);
  if (model.length > 0) request.setString("model", model);
  if (maxTokens > 0) request.setNumber("max_tokens", <f64>maxTokens);
  const result = hostCall("llm.complete", request.stringify());
  if (!result.ok) return new Completion(result.error, "", null);
  const answer = result.json();
  if (answer === null) return new Completion(new AgentflowError("llm.complete", ERR_INTERNAL), "", null);
  return new Completion(null, answer.getString("content"), answer);
}

/** What http.fetch answered: the HTTP status and body (an HTTP error status is not an error). */
export class FetchResult {
  constructor(
    public error: AgentflowError | null,
    public status: i32,
    public body: string,
    public response: Json | null,
  ) {}

  get ok(): bool {
    return this.error === null;
  }
}

/**
 * One HTTP request through the node (http.fetch); the host must be in the step's
 * capabilities.http.allowedHosts. `body` "" sends none. Errors: ERR_DENIED (host not allowed),
 * ERR_UNAVAILABLE (unresolvable, refused, timed out), ERR_BAD_REQUEST (not an http(s) URL), ...
 */
export function httpRequest(method: string, url: string, body: string = ""): FetchResult {
  const request = jsonObject().setString("method", method).setString("url", url);
  if (body.length > 0) request.setString("body", body);
  const result = hostCall("http.fetch", request.stringify());
  if (!result.ok) return new FetchResult(result.error, 0, "", null);
  const answer = result.json();
  if (answer === null) return new FetchResult(new AgentflowError("http.fetch", ERR_INTERNAL), 0, "", null);
  return new FetchResult(null, <i32>answer.getNumber("status"), answer.getString("body"), answer);
}

/** GET `url` through http.fetch; see httpRequest. */
export function httpFetch(url: string): FetchResult {
  return httpRequest("GET", url);
}
