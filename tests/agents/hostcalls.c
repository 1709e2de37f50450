/*
 * hostcalls — test agent for the host-call bridge.
 *
 * Tries "log", "llm.complete", "http.fetch" and an unknown operation and outputs their
 * return codes: {"log": rc, "llm": rc, "http": rc, "unknown": rc}
 * (0 for a successful log; otherwise the response length or a negative AF_ERR_* code).
 */
#include "agentflow.h"

int main(void) {
    char buf[256];
    int log_rc = af_log("info", "hello from \"hostcalls\"");
    int64_t llm_rc = af_host_call("llm.complete", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                                  buf, sizeof buf);
    int64_t http_rc = af_host_call("http.fetch", "{\"url\":\"https://example.com/\"}", buf, sizeof buf);
    int64_t unknown_rc = af_host_call("no.such.op", "{}", buf, sizeof buf);
    printf("{\"log\":%d,\"llm\":%lld,\"http\":%lld,\"unknown\":%lld}\n", log_rc, (long long)llm_rc,
           (long long)http_rc, (long long)unknown_rc);
    return 0;
}
