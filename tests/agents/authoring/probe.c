/*
 * probe — test agent for the C helpers of agentflow.h, built with `agentflow agent build`
 * (tests/integration/test_authoring_e2e.py); probe.ts is the same agent in AssemblyScript.
 *
 * input.mode picks what it does:
 *   "fail"   writes input.message to stderr and exits with input.code
 *   "spin"   loops until the step's timeout stops it
 *   "llm"    asks llm.complete input.prompt
 *   "fetch"  GETs input.url with http.fetch
 * and outputs {"mode", "flag": input.flag, "ratio": input.ratio, "result": ...} where result is
 * {"content"} or {"status", "body"} on success and {"error": <name>, "code": <AF_ERR_*>} on failure.
 */
#include "agentflow.h"

static void print_error(af_buf *out, int64_t code) {
    af_buf_printf(out, "{\"error\":\"%s\",\"code\":%lld}", af_error_name(code), (long long)code);
}

int main(void) {
    char *doc = af_read_stdin(NULL);
    char mode[32] = "";
    af_get_string(doc, "input.mode", mode, sizeof mode);

    if (strcmp(mode, "fail") == 0) {
        long long code = 1;
        af_get_int(doc, "input.code", &code);
        char *message = af_get_string_dup(doc, "input.message", NULL);
        return af_fail((int)code, "probe: %s", message ? message : "failing");
    }
    if (strcmp(mode, "spin") == 0) {
        af_log("info", "probe: spinning");
        volatile unsigned long n = 0;
        for (;;) n++;
    }

    int flag = 0;
    double ratio = 0;
    af_buf out;
    af_buf_init(&out);
    af_buf_puts(&out, "{\"mode\":");
    af_buf_string(&out, mode, strlen(mode));
    af_buf_printf(&out, ",\"flag\":%s", af_get_bool(doc, "input.flag", &flag) ? (flag ? "true" : "false") : "null");
    if (af_get_double(doc, "input.ratio", &ratio))
        af_buf_printf(&out, ",\"ratio\":%g", ratio);
    af_buf_puts(&out, ",\"result\":");

    int64_t code = AF_OK;
    if (strcmp(mode, "llm") == 0) {
        char *prompt = af_get_string_dup(doc, "input.prompt", NULL);
        char *content = af_llm_complete(prompt ? prompt : "", &code);
        if (content) {
            af_buf_puts(&out, "{\"content\":");
            af_buf_string(&out, content, strlen(content));
            af_buf_puts(&out, "}");
        } else {
            af_logf("error", "probe: llm.complete failed: %s (%lld)", af_error_name(code), (long long)code);
            print_error(&out, code);
        }
    } else if (strcmp(mode, "fetch") == 0) {
        char *url = af_get_string_dup(doc, "input.url", NULL);
        char *response = af_http_fetch(url ? url : "", &code);
        if (response) {
            long long status = 0;
            af_get_int(response, "status", &status);
            char *body = af_get_string_dup(response, "body", NULL);
            af_buf_printf(&out, "{\"status\":%lld,\"body\":", status);
            af_buf_string(&out, body ? body : "", body ? strlen(body) : 0);
            af_buf_puts(&out, "}");
        } else {
            print_error(&out, code);
        }
    } else {
        af_buf_puts(&out, "null");
    }
    af_buf_puts(&out, "}");
    puts(out.data);
    return 0;
}
