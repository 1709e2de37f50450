/*
 * llm_summarize — summarises its input text with one LLM call (llm.complete).
 *
 * stdin:  {"input": {"text": "..."}, ...}
 * stdout: {"summary": "<the model's answer>", "chars": <length of the input text>}
 *
 * The model, temperature and token limit come from the step's llm: block; the step needs
 * capabilities.llm. A refused call (no capability, budget exceeded, provider failing) fails
 * the step with exit code 2 and the reason in its log.
 */
#include "agentflow.h"

int main(void) {
    char *doc = af_read_stdin(NULL);
    size_t text_len = 0;
    char *text = af_get_string_dup(doc, "input.text", &text_len);
    if (!text) {
        af_log("error", "input.text is missing or not a string");
        return 1;
    }
    const char *ask = "Summarise the following text in one sentence:\n\n";
    char *prompt = malloc(strlen(ask) + text_len + 1);
    strcpy(prompt, ask);
    strcat(prompt, text);

    int64_t code = 0;
    char *summary = af_llm_complete(prompt, &code);
    if (!summary) {
        char line[96];
        snprintf(line, sizeof line, "llm.complete failed: %s (%lld)", af_error_name(code), (long long)code);
        af_log("error", line);
        return 2;
    }
    af_log("info", "summarised with one llm.complete call");
    fputs("{\"summary\": ", stdout);
    af_print_string(summary, strlen(summary));
    printf(", \"chars\": %zu}\n", text_len);
    free(summary);
    free(prompt);
    free(text);
    return 0;
}
