// probe — test agent for the AssemblyScript library (assembly/agentflow.ts), built with
// `agentflow agent build` (tests/integration/test_authoring_e2e.py); probe.c is the same agent
// in C, with the same input modes and output.
import {
  AgentflowError, fail, httpFetch, jsonBool, jsonNull, jsonNumber, jsonObject, Json, llmComplete, log,
  readInput, writeOutput,
} from "./agentflow";

function errorJson(error: AgentflowError): Json {
  return jsonObject().setString("error", error.name).setNumber("code", <f64>error.code);
}

// Inside a function: AssemblyScript narrows `Json | null` for locals, not for globals.
function main(): void {
  const doc = readInput();
  const mode = doc.getString("input.mode");

  if (mode == "fail") {
    fail("probe: " + doc.getString("input.message", "failing"), <i32>doc.getNumber("input.code", 1));
  }
  if (mode == "spin") {
    log("info", "probe: spinning");
    let n: u64 = 0;
    while (true) n++;
  }

  const out = jsonObject().setString("mode", mode);
  const flag = doc.path("input.flag");
  out.set("flag", flag !== null && flag.isBool() ? jsonBool(flag.boolValue) : jsonNull());
  const ratio = doc.path("input.ratio");
  if (ratio !== null && ratio.isNumber()) out.set("ratio", jsonNumber(ratio.numberValue));

  if (mode == "llm") {
    const answer = llmComplete(doc.getString("input.prompt"));
    const error = answer.error;
    if (error === null) {
      out.set("result", jsonObject().setString("content", answer.content));
    } else {
      log("error", "probe: " + error.toString());
      out.set("result", errorJson(error));
    }
  } else if (mode == "fetch") {
    const fetched = httpFetch(doc.getString("input.url"));
    const error = fetched.error;
    if (error === null) {
      out.set("result", jsonObject().setNumber("status", <f64>fetched.status).setString("body", fetched.body));
    } else {
      out.set("result", errorJson(error));
    }
  } else {
    out.set("result", jsonNull());
  }
  writeOutput(out);
}

main();
