/*
 * llm — test agent for llm.complete.
 *
 * input.calls is a list of requests of input.op (default "llm.complete"; "http.fetch" works the
 * same way); the agent makes them in order and outputs
 * [{"rc": <response length or AF_ERR_* code>, "response": <the JSON response or null>}, ...].
 * With input.crash set, it exits with code 9 after the calls (a step that fails after its LLM calls);
 * with input.hang_on_attempt set to N, attempt N spins after its calls until its timeout (a step
 * whose node can be killed between its LLM calls and its end).
 */
#include "agentflow.h"

int main(void) {
    char *doc = af_read_stdin(NULL);
    const char *it = af_json_get(doc, "input.calls", NULL), *v;
    size_t vlen;
    char op[64] = "llm.complete";
    af_get_string(doc, "input.op", op, sizeof op);
    int first = 1;
    putchar('[');
    while (it && af_json_next(&it, NULL, NULL, &v, &vlen)) {
        int64_t n = af_raw_host_call(op, strlen(op), v, vlen);
        printf("%s{\"rc\":%lld,\"response\":", first ? "" : ",", (long long)n);
        first = 0;
        if (n >= 0) {
            char *response = malloc((size_t)n + 1);
            int32_t got = af_raw_host_result(response, (size_t)n);
            fwrite(response, 1, got > 0 ? (size_t)got : 0, stdout);
            free(response);
        } else {
            fputs("null", stdout);
        }
        putchar('}');
    }
    puts("]");
    fflush(stdout);
    long long crash = 0, hang = 0, attempt = 0;
    if (af_get_int(doc, "input.crash", &crash) && crash) return 9;
    if (af_get_int(doc, "input.hang_on_attempt", &hang) && af_get_int(doc, "step.attempt", &attempt) && hang == attempt) {
        volatile unsigned long spin = 0;
        for (;;) spin++;
    }
    return 0;
}
