// {{name}} — an AgentFlow agent in AssemblyScript (a WASI preview1 command module).
//
// stdin:  {"input": {"text": "...", "url": "..."}, "upstream": {...}, "step": {...}}
//         (input.url is optional)
// stdout: {"text": "...", "words": 3, "chars": 16, "shout": "...", "fetch": {...}}
//
// It reads input.text, logs a line through the `log` host call, counts and shouts the text
// and, when input.url is given, fetches it with the `http.fetch` host call. workflow.yaml
// grants http.fetch for the hosts in capabilities.http.allowedHosts only: any other URL is
// denied (ERR_DENIED), which this agent reports in its output instead of failing.
//
//   agentflow agent build                   # -> build/{{name}}.wasm
//   agentflow run workflow.yaml --input '{"text": "hello wasm world"}' --wait
//
// ./agentflow.ts (copied from agentflow) has the JSON helpers and the host calls; its list of
// functions is at its top.
import { ERR_DENIED, exit, fail, httpFetch, jsonObject, log, readInput, writeOutput } from "./agentflow";

function isSpace(c: i32): bool {
  return c == 0x20 || (c >= 0x09 && c <= 0x0d);
}

function main(): i32 {
  const doc = readInput(); // {"input", "upstream", "step"}
  const text = doc.path("input.text");
  if (text === null || !text.isString()) {
    // A non-zero exit fails the step; what the agent wrote to stderr is kept with the step
    // and shown by `agentflow status` and `agentflow run --wait`.
    fail("{{name}}: input.text is missing or not a string (run it with --input '{\"text\": \"...\"}')", 1);
    return 1;
  }
  const s = text.stringValue;
  let words = 0;
  let chars = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isSpace(c) && (i == 0 || isSpace(s.charCodeAt(i - 1)))) words++;
    if (c < 0xdc00 || c > 0xdfff) chars++; // count characters, not UTF-16 units
  }

  // `log` is always allowed; the line lands in the step's stderr as "[info] ...".
  log("info", "{{name}}: " + words.toString() + " words, " + chars.toString() + " characters");

  const out = jsonObject()
    .setString("text", s)
    .setNumber("words", <f64>words)
    .setNumber("chars", <f64>chars)
    .setString("shout", s.toUpperCase());

  const url = doc.getString("input.url");
  if (url.length > 0) {
    const fetched = httpFetch(url);
    const error = fetched.error;
    if (error === null) {
      out.set("fetch", jsonObject().setNumber("status", <f64>fetched.status));
    } else if (error.code == ERR_DENIED) {
      // The URL's host is not in capabilities.http.allowedHosts (workflow.yaml): the node
      // refused the call and wrote why to the step's log. This agent carries on and says so in
      // its output; `fail(...)` would fail the step instead.
      log("warn", "{{name}}: http.fetch of " + url + " denied: add its host to capabilities.http.allowedHosts");
      out.set("fetch", jsonObject().setString("error", error.name).setNumber("code", <f64>error.code));
    } else {
      // ERR_UNAVAILABLE: unresolvable, refused or timed out; ERR_BAD_REQUEST: not an http(s)
      // URL; ERR_RATE_LIMITED: too many calls. Fail the step (retried by its retry policy).
      fail("{{name}}: " + error.toString() + " for " + url, 2);
      return 2;
    }
  }
  writeOutput(out); // stdout: exactly one JSON value, the step's output
  return 0;
}

exit(main());
