/*
 * {{name}} — an AgentFlow agent in C (a WASI preview1 command module).
 *
 * stdin:  {"input": {"text": "...", "url": "..."}, "upstream": {...}, "step": {...}}
 *         (input.url is optional)
 * stdout: {"text": "...", "words": 3, "chars": 16, "shout": "...", "fetch": {...}}
 *
 * It reads input.text, logs a line through the `log` host call, counts and shouts the text
 * and, when input.url is given, fetches it with the `http.fetch` host call. workflow.yaml
 * grants http.fetch for the hosts in capabilities.http.allowedHosts only: any other URL is
 * denied (AF_ERR_DENIED), which this agent reports in its output instead of failing.
 *
 *   agentflow agent build                   # -> build/{{name}}.wasm
 *   agentflow run workflow.yaml --input '{"text": "hello wasm world"}' --wait
 *
 * agentflow.h (shipped with agentflow; `agentflow agent build` puts it on the include path)
 * has the JSON helpers (af_get_string_dup, af_buf_*, ...) and the host calls (af_log,
 * af_http_fetch, af_llm_complete, ...), each returning an AF_ERR_* code on failure.
 */
#include "agentflow.h"

#include <ctype.h>

int main(void) {
    char *doc = af_read_stdin(NULL);
    if (!doc) return af_fail(1, "{{name}}: out of memory reading stdin");

    size_t len = 0;
    char *text = af_get_string_dup(doc, "input.text", &len);
    if (!text) {
        /* A non-zero exit fails the step; what the agent wrote to stderr is kept with the step
         * and shown by `agentflow status` and `agentflow run --wait`. */
        return af_fail(1, "{{name}}: input.text is missing or not a string "
                          "(run it with --input '{\"text\": \"...\"}')");
    }

    size_t words = 0, chars = 0;
    char *shout = malloc(len + 1);
    if (!shout) return af_fail(1, "{{name}}: out of memory");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!isspace(c) && (i == 0 || isspace((unsigned char)text[i - 1]))) words++;
        if ((c & 0xC0) != 0x80) chars++; /* count UTF-8 characters, not bytes */
        shout[i] = (char)toupper(c);
    }
    shout[len] = '\0';

    /* `log` is always allowed; the line lands in the step's stderr as "[info] ...". */
    af_logf("info", "{{name}}: %zu words, %zu characters", words, chars);

    af_buf out;
    af_buf_init(&out);
    af_buf_puts(&out, "{\"text\":");
    af_buf_string(&out, text, len);
    af_buf_printf(&out, ",\"words\":%zu,\"chars\":%zu,\"shout\":", words, chars);
    af_buf_string(&out, shout, len);

    char url[2048];
    if (af_get_string(doc, "input.url", url, sizeof url) > 0) {
        int64_t code = AF_OK;
        char *response = af_http_fetch(url, &code);
        if (response) {
            long long status = 0;
            af_get_int(response, "status", &status);
            af_buf_printf(&out, ",\"fetch\":{\"status\":%lld}", status);
            free(response);
        } else if (code == AF_ERR_DENIED) {
            /* The URL's host is not in capabilities.http.allowedHosts (workflow.yaml): the node
             * refused the call and wrote why to the step's log. This agent carries on and says
             * so in its output; `return af_fail(2, ...)` would fail the step instead. */
            af_logf("warn", "{{name}}: http.fetch of %s denied: add its host to capabilities.http.allowedHosts", url);
            af_buf_printf(&out, ",\"fetch\":{\"error\":\"%s\",\"code\":%lld}", af_error_name(code), (long long)code);
        } else {
            /* AF_ERR_UNAVAILABLE: unresolvable, refused or timed out; AF_ERR_BAD_REQUEST: not an
             * http(s) URL; AF_ERR_RATE_LIMITED: too many calls. Fail the step (retried by its
             * retry policy). */
            return af_fail(2, "{{name}}: http.fetch of %s failed: %s (%lld)", url, af_error_name(code), (long long)code);
        }
    }
    af_buf_puts(&out, "}");
    if (out.failed) return af_fail(1, "{{name}}: out of memory");
    puts(out.data); /* stdout: exactly one JSON value, the step's output */
    af_buf_free(&out);
    free(shout);
    free(text);
    free(doc);
    return 0;
}
