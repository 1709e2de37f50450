"""py_summarize — the llm_summarize agent in Python: one llm.complete call through the host's router.

Input {"text": "..."}; output {"summary": "<the model's answer>", "chars": <length of the text>}.
The model and its settings come from the step's llm: block; the step needs capabilities.llm.
"""

import agentflow


def run(input):
    text = input.get("text")
    if not isinstance(text, str):
        raise agentflow.Fail("input.text is missing or not a string")
    agentflow.log(f"summarising {len(text)} characters")
    try:
        answer = agentflow.llm.complete(f"Summarise the following text in one sentence:\n\n{text}")
    except agentflow.CapabilityDenied as denied:
        raise agentflow.Fail(f"this step may not call the LLM: {denied.message}") from None
    except agentflow.BudgetExceeded:
        return {"summary": None, "chars": len(text), "skipped": "the LLM budget is spent"}
    except agentflow.LLMError as failed:  # the provider kept failing; the step's retry policy decides
        raise agentflow.Fail(f"the model failed: {failed.message}") from None
    agentflow.log(f"answered by {answer.model} ({answer.cache}, ${answer.cost_usd:.6f})")
    return {"summary": answer.text, "chars": len(text)}
