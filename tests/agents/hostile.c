/*
 * hostile — test agent that attacks its own sandbox in one of several ways.
 *
 * input.attack picks the attack:
 *   "recursion"     recurses without end, each frame holding a buffer on the shadow stack
 *   "bad_pointers"  hands host_call/host_result pointers and lengths outside its memory
 *                   (past the end, negative, wrapping) and outputs every return code:
 *                   {"codes": [rc, ...], "memory_intact": true}
 *   "flood"         calls "log" in a loop until a call fails, then outputs {"calls": N, "last": rc};
 *                   with input.relentless it never stops calling (the node has to stop it)
 *   "stderr"        writes input.mib MiB (default 10) to stderr, then outputs {"ok": true}
 *   "fetch"         http.fetch of input.url; outputs {"rc": rc, "response": "..."}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentflow.h"

static int depth(volatile int n) {
    volatile char frame[1024];
    frame[n % sizeof frame] = (char)n;
    return depth(n + 1) + frame[0];
}

static void bad_pointers(void) {
    static const char op[] = "log";
    static const char req[] = "{\"message\":\"x\"}";
    char *past_end = (char *)(uintptr_t)0xFFFFFFF0u;
    int64_t codes[9];
    codes[0] = af_raw_host_call(past_end, 3, req, strlen(req));          /* op out of bounds */
    codes[1] = af_raw_host_call(op, 3, past_end, 64);                     /* request out of bounds */
    codes[2] = af_raw_host_call(op, (size_t)-1, req, strlen(req));        /* op length -1 */
    codes[3] = af_raw_host_call(op, 3, req, (size_t)-1);                  /* request length -1 */
    codes[4] = af_raw_host_call(op, 3, (char *)(uintptr_t)0xFFFFFFFFu, 2); /* wraps past 4 GiB */
    /* A valid call leaves a response pending; then ask for it into memory that is not ours. */
    codes[5] = af_raw_host_call(op, 3, req, strlen(req));
    codes[6] = af_raw_host_result(past_end, 64);
    codes[7] = af_raw_host_result((char *)(uintptr_t)0x7FFFFFFFu, (size_t)-1);
    char buf[64];
    codes[8] = af_raw_host_result(buf, sizeof buf); /* still pending: the bad reads took nothing */
    fputs("{\"codes\":[", stdout);
    for (int i = 0; i < 9; i++) printf("%s%lld", i ? "," : "", (long long)codes[i]);
    printf("],\"memory_intact\":%s}\n", strcmp(req, "{\"message\":\"x\"}") == 0 ? "true" : "false");
}

static void flood(int relentless) {
    static const char req[] = "{\"message\":\"flood\"}";
    long long calls = 0;
    int64_t rc = 0;
    while ((rc = af_raw_host_call("log", 3, req, strlen(req))) >= 0 || relentless) {
        if (rc >= 0) af_raw_host_result(NULL, 0);
        calls++;
    }
    printf("{\"calls\":%lld,\"last\":%lld}\n", calls, (long long)rc);
}

static void stderr_flood(long long mib) {
    static char line[1024];
    memset(line, 'e', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (long long i = 0; i < mib * 1024; i++) fwrite(line, 1, sizeof line, stderr);
    fflush(stderr);
    puts("{\"ok\":true}");
}

static void fetch(const char *doc) {
    char url[1024];
    if (af_get_string(doc, "input.url", url, sizeof url) < 0) {
        fputs("input.url is missing\n", stderr);
        exit(2);
    }
    size_t esc = af_json_escape(url, strlen(url), NULL, 0);
    char *req = malloc(esc + 16);
    strcpy(req, "{\"url\":\"");
    af_json_escape(url, strlen(url), req + 8, esc + 1);
    strcat(req, "\"}");
    static char out[4096];
    int64_t rc = af_host_call("http.fetch", req, out, sizeof out);
    printf("{\"rc\":%lld,\"response\":", (long long)rc);
    af_print_string(rc >= 0 ? out : "", rc >= 0 ? strlen(out) : 0);
    puts("}");
}

int main(void) {
    char *doc = af_read_stdin(NULL);
    char attack[32];
    if (af_get_string(doc, "input.attack", attack, sizeof attack) < 0) {
        fputs("input.attack is missing\n", stderr);
        return 2;
    }
    if (!strcmp(attack, "recursion")) return depth(0);
    if (!strcmp(attack, "bad_pointers")) bad_pointers();
    else if (!strcmp(attack, "flood")) {
        long long relentless = 0;
        af_get_int(doc, "input.relentless", &relentless);
        flood(relentless != 0);
    }
    else if (!strcmp(attack, "stderr")) {
        long long mib = 10;
        af_get_int(doc, "input.mib", &mib);
        stderr_flood(mib);
    } else if (!strcmp(attack, "fetch")) fetch(doc);
    else {
        fprintf(stderr, "unknown attack %s\n", attack);
        return 2;
    }
    return 0;
}
