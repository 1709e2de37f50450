"""pyagent — test agent in Python, built into a component by the tests.

input.do picks what it does: "echo" (default) outputs {"input", "upstream", "step"}; "log"
logs and prints; "fetch" tries input.url and reports what was refused; "llm" asks input.prompt;
"fail" raises agentflow.Fail; "boom" raises ZeroDivisionError; "spin" never returns.
"""

import agentflow


def run(input):
    do = input.get("do", "echo")
    if do == "log":
        agentflow.log("a log line", level="warn")
        print("a printed line")
        return {"logged": True}
    if do == "fetch":
        try:
            response = agentflow.http.fetch(input["url"])
        except agentflow.CapabilityDenied as denied:
            return {"denied": [denied.code, denied.error, denied.message]}
        except agentflow.Unavailable as unavailable:
            return {"unavailable": unavailable.message}
        return {"status": response.status, "body": response.body}
    if do == "llm":
        try:
            answer = agentflow.llm.complete(input["prompt"], model=input.get("model"))
        except agentflow.HostCallError as refused:
            return {"refused": [refused.code, refused.error, refused.message]}
        return {"text": answer.text, "model": answer.model, "cache": answer.cache, "usage": answer.usage}
    if do == "fail":
        raise agentflow.Fail("asked to fail")
    if do == "boom":
        return 1 / 0
    if do == "spin":
        while True:
            pass
    return {"input": input, "upstream": agentflow.upstream, "step": agentflow.step}
