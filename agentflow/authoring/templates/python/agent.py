"""{{name}}: an AgentFlow agent in Python.

run(input) gets the step's input and returns its output (any JSON value). agentflow.upstream
holds the outputs of the steps it depends on, agentflow.step its ids. Raise agentflow.Fail to
fail the attempt (the step's retry policy decides what happens next).
"""

import agentflow


def run(input):
    text = input.get("text") if isinstance(input, dict) else None
    if not isinstance(text, str):
        raise agentflow.Fail('give the step an input like {"text": "..."}')
    agentflow.log(f"{len(text)} characters to look at")
    result = {"words": len(text.split()), "shout": text.upper()}

    url = input.get("url")
    if url:
        try:
            response = agentflow.http.fetch(url)
            result["fetched"] = {"status": response.status, "bytes": len(response.body)}
        except agentflow.CapabilityDenied as denied:  # the host is not in capabilities.http.allowedHosts
            agentflow.log(f"not allowed to fetch {url}: {denied.message}", level="warn")
            result["fetched"] = {"denied": denied.message}

    if input.get("ask"):
        try:
            answer = agentflow.llm.complete(f"Answer in one sentence: {input['ask']}")
            result["answer"] = answer.text
        except agentflow.CapabilityDenied:
            result["answer"] = None  # the workflow gives this step no capabilities.llm
        except agentflow.LLMError as failed:  # the provider kept failing after the router's retries
            raise agentflow.Fail(f"the model failed: {failed.message}") from None
    return result
