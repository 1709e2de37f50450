/*
 * agentflow.h — the AgentFlow agent ABI v1 for C (and anything that can include C).
 *
 * An agent is a WASI preview1 command module:
 *
 *   stdin   one JSON document
 *             {"input": ..., "upstream": {"<step>": <output>, ...},
 *              "step": {"run": "<run id>", "name": "<step name>", "attempt": <int>}}
 *   stdout  exactly one JSON value: the step's output
 *   stderr  free-form log lines (kept with the step, capped)
 *   exit    0 = success; a non-zero exit code or a trap = failure
 *
 * Host calls go through two imports from the module "agentflow":
 *
 *   int64_t host_call(op_ptr, op_len, req_ptr, req_len)
 *       op is an operation name ("log", "llm.complete", "http.fetch"), req a JSON
 *       request. Returns the byte length of the JSON response (>= 0), which is now
 *       pending, or a negative AF_ERR_* code.
 *   int32_t host_result(buf_ptr, buf_len)
 *       copies the pending response into buf (at most buf_len bytes), clears it and
 *       returns the number of bytes written; AF_ERR_NO_PENDING if nothing is pending.
 *
 * Everything below the two imports is a convenience:
 *
 *   stdin        af_read_stdin
 *   JSON in      af_json_get (dotted paths: "input.text", "upstream.fetch.words"),
 *                af_json_next (iterate), af_json_string, af_json_int,
 *                af_get_string, af_get_string_dup, af_get_int, af_get_bool, af_get_double
 *   JSON out     af_json_escape, af_print_string, af_buf (af_buf_init, af_buf_puts,
 *                af_buf_append, af_buf_printf, af_buf_string, af_buf_free)
 *   host calls   af_host_call, af_host_call_dup, af_log, af_logf, af_llm_complete,
 *                af_http_fetch, af_http_request
 *   errors       AF_OK, AF_ERR_* (every code the host returns), af_error_name, af_fail
 *
 * Build: `agentflow agent build` (see `agentflow agent new NAME --lang c`), or by hand:
 *   python -m ziglang cc --target=wasm32-wasi -O2 -I <dir of this file> agent.c -o agent.wasm
 * This file ships inside the agentflow package (agentflow/authoring/c/agentflow.h);
 * examples/agents/include/agentflow.h in the repository is a link to it.
 *
 * A minimal agent:
 *
 *   #include "agentflow.h"
 *
 *   int main(void) {
 *       char *doc = af_read_stdin(NULL);
 *       char name[64];
 *       if (af_get_string(doc, "input.name", name, sizeof name) < 0)
 *           strcpy(name, "world");
 *       af_log("info", "greeting someone");
 *       fputs("{\"greeting\": ", stdout);
 *       af_print_string(name, strlen(name));
 *       fputs("}\n", stdout);
 *       return 0;
 *   }
 */
#ifndef AGENTFLOW_H
#define AGENTFLOW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- error codes returned by host_call / host_result ------------------------------ */

#define AF_OK 0                 /* success (af_log, the *code of the wrappers below) */
#define AF_ERR_UNKNOWN_OP (-1)  /* no such operation */
#define AF_ERR_DENIED (-2)      /* the step lacks the capability for this operation */
#define AF_ERR_BAD_REQUEST (-3) /* request is not valid JSON / bad pointers */
#define AF_ERR_UNAVAILABLE (-4) /* operation allowed but not served on this node */
#define AF_ERR_NO_PENDING (-5)  /* host_result called with no pending response */
#define AF_ERR_TOO_LARGE (-6)   /* request or response over 1 MiB */
#define AF_ERR_INTERNAL (-7)    /* host-side failure */
#define AF_ERR_BUDGET_EXCEEDED (-8) /* llm.complete: the step's or run's LLM budget would be exceeded */
#define AF_ERR_UPSTREAM (-9)    /* llm.complete: the model provider failed (after retries, fallbacks) */
#define AF_ERR_RATE_LIMITED (-10) /* over 1000 host calls a second: slow down (100,000 in all end the step) */

#define AF_MAX_MESSAGE (1024 * 1024) /* largest request or response, in bytes */

/* ---- the raw imports --------------------------------------------------------------- */

__attribute__((import_module("agentflow"), import_name("host_call"))) int64_t
af_raw_host_call(const char *op, size_t op_len, const char *req, size_t req_len);

__attribute__((import_module("agentflow"), import_name("host_result"))) int32_t
af_raw_host_result(char *buf, size_t buf_len);

/* ---- stdin ------------------------------------------------------------------------- */

/* Reads all of stdin into a malloc'd, NUL-terminated buffer. Stores the length in *len
 * when len is not NULL. Returns NULL only when memory runs out. */
static inline char *af_read_stdin(size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (cap - n < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        if (got == 0) break;
        n += got;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* ---- a tolerant JSON reader --------------------------------------------------------
 *
 * These functions work on raw JSON text in place: they never build a tree, they only
 * skip over values. A "raw value" is a pointer into the text plus a length, e.g. the
 * raw value of "words" in {"words": ["a", "b"]} is the 10 bytes ["a", "b"].
 * The input need not be validated first; malformed text makes lookups fail (NULL/0),
 * never read past the terminating NUL.
 */

static inline const char *af__skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* p points at an opening quote; returns the pointer just past the closing quote, or
 * NULL if the string is unterminated. Escaped quotes (\") are skipped correctly. */
static inline const char *af__skip_string(const char *p) {
    p++;
    while (*p && *p != '"') {
        if (*p == '\\') {
            p++;
            if (!*p) return NULL;
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

/* p points at the first byte of any JSON value; returns the pointer just past it, or
 * NULL if the value is malformed or truncated. Nested objects/arrays and strings
 * containing brackets are handled. */
static inline const char *af__skip_value(const char *p) {
    if (*p == '"') return af__skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = af__skip_string(p);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    /* number, true, false, null */
    const char *start = p;
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' &&
           *p != '\r')
        p++;
    return p == start ? NULL : p;
}

/* Iterates over the members of a JSON object or the elements of a JSON array.
 *
 * Set *it to the raw object/array (pointing at '{' or '[') before the first call. Each
 * call stores the next value in *value and *value_len and returns 1; it returns 0 at the end
 * (or on malformed input). For objects, *key and *key_len receive the member name without
 * its quotes (escapes are not decoded); for arrays *key is set to NULL. key and key_len
 * may be NULL when the caller does not need them.
 *
 *   const char *it = af_json_get(doc, "upstream", NULL), *k, *v;
 *   size_t klen, vlen;
 *   while (af_json_next(&it, &k, &klen, &v, &vlen)) { ... }
 */
static inline int af_json_next(const char **it, const char **key, size_t *key_len, const char **value,
                               size_t *value_len) {
    const char *p = *it;
    if (!p) return 0;
    char open = *p;
    if (open == '{' || open == '[') {
        p++; /* first call: step inside */
    } else if (*p == ',') {
        p++;
        open = 0; /* continuing; the container kind is told by whether a key follows */
    } else {
        *it = NULL;
        return 0;
    }
    p = af__skip_ws(p);
    if (*p == '}' || *p == ']' || !*p) {
        *it = NULL;
        return 0;
    }
    const char *k = NULL;
    size_t klen = 0;
    /* An object member is a string followed by ':'; an array element never is. */
    if (*p == '"' && open != '[') {
        const char *end = af__skip_string(p);
        if (!end) return (*it = NULL), 0;
        const char *colon = af__skip_ws(end);
        if (*colon == ':') {
            k = p + 1;
            klen = (size_t)(end - p - 2);
            p = af__skip_ws(colon + 1);
        }
    }
    const char *end = af__skip_value(p);
    if (!end) return (*it = NULL), 0;
    if (key) *key = k;
    if (key_len) *key_len = klen;
    if (value) *value = p;
    if (value_len) *value_len = (size_t)(end - p);
    *it = af__skip_ws(end); /* now at ',' or the closing bracket */
    return 1;
}

/* Looks up a dotted path such as "input.text", "upstream.fetch.words" or "step.attempt"
 * in a JSON object and returns a pointer to the raw value (stores its length in *len when
 * len is not NULL), or NULL if any part of the path is missing or not an object. Path
 * segments are compared with the member names byte for byte. */
static inline const char *af_json_get(const char *json, const char *path, size_t *len) {
    const char *cur = af__skip_ws(json);
    while (*path) {
        const char *dot = strchr(path, '.');
        size_t seg_len = dot ? (size_t)(dot - path) : strlen(path);
        if (*cur != '{') return NULL;
        const char *it = cur, *k, *v;
        size_t klen, vlen;
        const char *found = NULL;
        while (af_json_next(&it, &k, &klen, &v, &vlen)) {
            if (k && klen == seg_len && memcmp(k, path, seg_len) == 0) {
                found = v;
                break;
            }
        }
        if (!found) return NULL;
        cur = found;
        path += seg_len;
        if (*path == '.') path++;
    }
    const char *end = af__skip_value(cur);
    if (!end) return NULL;
    if (len) *len = (size_t)(end - cur);
    return cur;
}

static inline int af__hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline long af__hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = af__hex(p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Decodes a raw JSON string value (with its quotes) into buf, snprintf-style: writes at
 * most cap-1 bytes plus a NUL (nothing when cap is 0) and returns the full decoded length,
 * or -1 if raw is not a string. \uXXXX escapes (and surrogate pairs) become UTF-8. */
static inline long af_json_string(const char *raw, size_t raw_len, char *buf, size_t cap) {
    if (raw_len < 2 || raw[0] != '"' || raw[raw_len - 1] != '"') return -1;
    const char *p = raw + 1, *end = raw + raw_len - 1;
    size_t n = 0;
#define AF__PUT(c)                                      \
    do {                                                \
        if (n + 1 < cap) buf[n] = (char)(c);            \
        n++;                                            \
    } while (0)
    while (p < end) {
        char c = *p++;
        if (c != '\\') {
            AF__PUT(c);
            continue;
        }
        if (p >= end) return -1;
        char e = *p++;
        switch (e) {
        case 'n': AF__PUT('\n'); break;
        case 't': AF__PUT('\t'); break;
        case 'r': AF__PUT('\r'); break;
        case 'b': AF__PUT('\b'); break;
        case 'f': AF__PUT('\f'); break;
        case 'u': {
            if (end - p < 4) return -1;
            long cp = af__hex4(p);
            if (cp < 0) return -1;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                long lo = af__hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp < 0x80) {
                AF__PUT(cp);
            } else if (cp < 0x800) {
                AF__PUT(0xC0 | (cp >> 6));
                AF__PUT(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                AF__PUT(0xE0 | (cp >> 12));
                AF__PUT(0x80 | ((cp >> 6) & 0x3F));
                AF__PUT(0x80 | (cp & 0x3F));
            } else {
                AF__PUT(0xF0 | (cp >> 18));
                AF__PUT(0x80 | ((cp >> 12) & 0x3F));
                AF__PUT(0x80 | ((cp >> 6) & 0x3F));
                AF__PUT(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: AF__PUT(e); break; /* \" \\ \/ */
        }
    }
#undef AF__PUT
    if (cap > 0) buf[n < cap ? n : cap - 1] = '\0';
    return (long)n;
}

/* Looks up a string at a dotted path and decodes it into buf (see af_json_string).
 * Returns the decoded length, or -1 if the path is missing or not a string. Call it with
 * buf = NULL, cap = 0 to learn the length first. */
static inline long af_get_string(const char *json, const char *path, char *buf, size_t cap) {
    size_t len;
    const char *raw = af_json_get(json, path, &len);
    return raw ? af_json_string(raw, len, buf, cap) : -1;
}

/* Like af_get_string but returns a malloc'd, NUL-terminated copy (or NULL). */
static inline char *af_get_string_dup(const char *json, const char *path, size_t *len) {
    long n = af_get_string(json, path, NULL, 0);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    af_get_string(json, path, s, (size_t)n + 1);
    if (len) *len = (size_t)n;
    return s;
}

/* Parses a raw JSON integer (no fraction or exponent). Returns 1 and stores it in *out,
 * or returns 0 if raw is not an integer. */
static inline int af_json_int(const char *raw, size_t raw_len, long long *out) {
    size_t i = 0;
    int neg = 0;
    long long v = 0;
    if (i < raw_len && raw[i] == '-') neg = 1, i++;
    if (i == raw_len) return 0;
    for (; i < raw_len; i++) {
        if (raw[i] < '0' || raw[i] > '9') return 0;
        v = v * 10 + (raw[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

/* Looks up an integer at a dotted path. Returns 1 and stores it in *out, or 0. */
static inline int af_get_int(const char *json, const char *path, long long *out) {
    size_t len;
    const char *raw = af_json_get(json, path, &len);
    return raw ? af_json_int(raw, len, out) : 0;
}

/* Looks up a boolean (true/false) at a dotted path. Returns 1 and stores 1 or 0 in *out, or 0. */
static inline int af_get_bool(const char *json, const char *path, int *out) {
    size_t len;
    const char *raw = af_json_get(json, path, &len);
    if (raw && len == 4 && memcmp(raw, "true", 4) == 0) return (*out = 1), 1;
    if (raw && len == 5 && memcmp(raw, "false", 5) == 0) return (*out = 0), 1;
    return 0;
}

/* Looks up any JSON number (fraction and exponent allowed) at a dotted path. Returns 1 and
 * stores it in *out, or 0 if the path is missing or not a number. */
static inline int af_get_double(const char *json, const char *path, double *out) {
    size_t len;
    const char *raw = af_json_get(json, path, &len);
    if (!raw || len == 0 || len > 63 || !(*raw == '-' || (*raw >= '0' && *raw <= '9'))) return 0;
    char tmp[64], *end;
    memcpy(tmp, raw, len);
    tmp[len] = '\0';
    double v = strtod(tmp, &end);
    if (end != tmp + len) return 0;
    *out = v;
    return 1;
}

/* ---- JSON output --------------------------------------------------------------------- */

/* JSON-escapes s[0..len) into out (without surrounding quotes), snprintf-style: writes at
 * most cap-1 bytes plus a NUL and returns the full escaped length. */
static inline size_t af_json_escape(const char *s, size_t len, char *out, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else if (c == '\r') {
            esc[k++] = '\\';
            esc[k++] = 'r';
        } else if (c == '\t') {
            esc[k++] = '\\';
            esc[k++] = 't';
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            k = 4;
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char)c;
        }
        for (size_t j = 0; j < k; j++, n++)
            if (n + 1 < cap) out[n] = esc[j];
    }
    if (cap > 0) out[n < cap ? n : cap - 1] = '\0';
    return n;
}

/* Writes s[0..len) to stdout as a quoted JSON string. */
static inline void af_print_string(const char *s, size_t len) {
    char chunk[256];
    putchar('"');
    /* escape in slices so the stack buffer stays small; one byte expands to at most 6 */
    for (size_t i = 0; i < len; i += 40) {
        size_t part = len - i < 40 ? len - i : 40;
        size_t n = af_json_escape(s + i, part, chunk, sizeof chunk);
        fwrite(chunk, 1, n, stdout);
    }
    putchar('"');
}

/* A growable text buffer for building JSON (requests, or the output):
 *
 *   af_buf b;
 *   af_buf_init(&b);
 *   af_buf_puts(&b, "{\"text\":");
 *   af_buf_string(&b, text, strlen(text));       // quoted and escaped
 *   af_buf_printf(&b, ",\"chars\":%zu}", strlen(text));
 *   if (b.failed) return af_fail(1, "out of memory");
 *   puts(b.data);
 *   af_buf_free(&b);
 *
 * b.data is always NUL-terminated (once anything was appended); after a failed allocation
 * b.failed is 1 and further appends do nothing. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} af_buf;

static inline void af_buf_init(af_buf *b) {
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

static inline void af_buf_free(af_buf *b) {
    free(b->data);
    af_buf_init(b);
}

static inline int af__buf_reserve(af_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *bigger = realloc(b->data, cap);
    if (!bigger) return (b->failed = 1), -1;
    b->data = bigger;
    b->cap = cap;
    return 0;
}

/* Appends s[0..n) as it is. Returns 0, or -1 when memory ran out. */
static inline int af_buf_append(af_buf *b, const char *s, size_t n) {
    if (af__buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline int af_buf_puts(af_buf *b, const char *s) { return af_buf_append(b, s, strlen(s)); }

/* Appends printf-style text. Returns 0, or -1. */
static inline int af_buf_printf(af_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || af__buf_reserve(b, (size_t)n) < 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Appends s[0..len) as a quoted, escaped JSON string. Returns 0, or -1. */
static inline int af_buf_string(af_buf *b, const char *s, size_t len) {
    size_t n = af_json_escape(s, len, NULL, 0);
    if (af__buf_reserve(b, n + 2) < 0) return -1;
    b->data[b->len++] = '"';
    af_json_escape(s, len, b->data + b->len, n + 1);
    b->len += n;
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    return 0;
}

/* ---- host calls ---------------------------------------------------------------------- */

/* Calls host operation op with the JSON request req. On success copies the JSON response
 * into out (at most out_cap-1 bytes plus a NUL; out may be NULL when out_cap is 0) and
 * returns its full length; returns a negative AF_ERR_* code on failure. */
static inline int64_t af_host_call(const char *op, const char *req, char *out, size_t out_cap) {
    int64_t n = af_raw_host_call(op, strlen(op), req, strlen(req));
    if (n < 0) return n;
    /* Always collect the response, even when the caller does not want it. */
    char *tmp = malloc((size_t)n + 1);
    if (!tmp) return AF_ERR_INTERNAL;
    int32_t got = af_raw_host_result(tmp, (size_t)n);
    if (got < 0) {
        free(tmp);
        return got;
    }
    if (out_cap > 0) {
        size_t copy = (size_t)got < out_cap - 1 ? (size_t)got : out_cap - 1;
        memcpy(out, tmp, copy);
        out[copy] = '\0';
    }
    free(tmp);
    return n;
}

/* Appends a line to the step's log. level is "debug", "info", "warn" or "error".
 * Returns 0, or a negative AF_ERR_* code. */
static inline int af_log(const char *level, const char *msg) {
    size_t msg_len = strlen(msg);
    size_t esc_len = af_json_escape(msg, msg_len, NULL, 0);
    size_t cap = esc_len + strlen(level) + 64;
    char *req = malloc(cap);
    if (!req) return AF_ERR_INTERNAL;
    int n = snprintf(req, cap, "{\"level\":\"%s\",\"message\":\"", level);
    af_json_escape(msg, msg_len, req + n, cap - (size_t)n);
    strcat(req, "\"}");
    int64_t rc = af_host_call("log", req, NULL, 0);
    free(req);
    return rc < 0 ? (int)rc : 0;
}

/* A short name for an AF_ERR_* code, for messages. */
static inline const char *af_error_name(int64_t code) {
    switch (code) {
    case AF_ERR_UNKNOWN_OP: return "unknown operation";
    case AF_ERR_DENIED: return "denied";
    case AF_ERR_BAD_REQUEST: return "bad request";
    case AF_ERR_UNAVAILABLE: return "unavailable";
    case AF_ERR_NO_PENDING: return "nothing pending";
    case AF_ERR_TOO_LARGE: return "too large";
    case AF_ERR_INTERNAL: return "internal error";
    case AF_ERR_BUDGET_EXCEEDED: return "budget exceeded";
    case AF_ERR_UPSTREAM: return "model provider failed";
    case AF_ERR_RATE_LIMITED: return "rate limited";
    default: return "error";
    }
}

/* Calls host operation op with the JSON request req and returns a malloc'd, NUL-terminated copy
 * of the JSON response (the caller frees it), setting *code to AF_OK; on failure returns NULL
 * and sets *code to the negative AF_ERR_* code (the host writes the reason to the step's log). */
static inline char *af_host_call_dup(const char *op, const char *req, int64_t *code) {
    int64_t len = af_raw_host_call(op, strlen(op), req, strlen(req));
    if (len < 0) {
        *code = len;
        return NULL;
    }
    char *response = malloc((size_t)len + 1);
    if (!response) {
        af_raw_host_result(NULL, 0); /* drop the pending response */
        *code = AF_ERR_INTERNAL;
        return NULL;
    }
    int32_t got = af_raw_host_result(response, (size_t)len);
    if (got < 0) {
        free(response);
        *code = got;
        return NULL;
    }
    response[got] = '\0';
    *code = AF_OK;
    return response;
}

/* af_log with printf-style formatting (messages up to 4 KiB; longer ones are cut). */
static inline int af_logf(const char *level, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return af_log(level, msg);
}

/* Writes a printf-style message and a newline to stderr (kept with the step, shown by
 * `agentflow status`) and returns exit_code, for `return af_fail(1, "why: %s", detail);`
 * from main. */
static inline int af_fail(int exit_code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stdout);
    return exit_code;
}

/* Makes one HTTP request through the node (http.fetch; the step needs
 * capabilities.http.allowedHosts to name the host). method is "GET", "POST", ...; body is the
 * request's text body or NULL. Returns the malloc'd JSON response
 *   {"status": 200, "headers": {...}, "url": "...", "body": "..." | "body_base64": "...",
 *    "truncated": false}
 * (read it with af_get_int(r, "status", ...), af_get_string_dup(r, "body", ...)) and sets *code
 * to AF_OK. An HTTP error status is a normal response. On failure returns NULL and sets *code:
 * AF_ERR_DENIED (the host is not allowed), AF_ERR_UNAVAILABLE (unresolvable, refused, timed out),
 * AF_ERR_BAD_REQUEST (not an http(s) URL), AF_ERR_RATE_LIMITED, ... */
static inline char *af_http_request(const char *method, const char *url, const char *body, int64_t *code) {
    af_buf req;
    af_buf_init(&req);
    af_buf_puts(&req, "{\"method\":");
    af_buf_string(&req, method, strlen(method));
    af_buf_puts(&req, ",\"url\":");
    af_buf_string(&req, url, strlen(url));
    if (body) {
        af_buf_puts(&req, ",\"body\":");
        af_buf_string(&req, body, strlen(body));
    }
    af_buf_puts(&req, "}");
    if (req.failed) {
        af_buf_free(&req);
        *code = AF_ERR_INTERNAL;
        return NULL;
    }
    char *response = af_host_call_dup("http.fetch", req.data, code);
    af_buf_free(&req);
    return response;
}

/* GET url through http.fetch; see af_http_request. */
static inline char *af_http_fetch(const char *url, int64_t *code) { return af_http_request("GET", url, NULL, code); }

/* Asks the step's LLM (llm.complete) to answer prompt, with the step's llm: defaults (model,
 * temperature, maxTokens). On success returns a malloc'd NUL-terminated copy of the answer's text
 * (the caller frees it) and sets *code to 0; on failure returns NULL and sets *code to the
 * negative AF_ERR_* code (the reason is in the step's log). */
static inline char *af_llm_complete(const char *prompt, int64_t *code) {
    size_t prompt_len = strlen(prompt);
    size_t esc_len = af_json_escape(prompt, prompt_len, NULL, 0);
    char *req = malloc(esc_len + 32);
    if (!req) {
        *code = AF_ERR_INTERNAL;
        return NULL;
    }
    strcpy(req, "{\"prompt\":\"");
    size_t n = strlen(req);
    af_json_escape(prompt, prompt_len, req + n, esc_len + 1);
    strcat(req, "\"}");
    int64_t len = af_raw_host_call("llm.complete", strlen("llm.complete"), req, strlen(req));
    free(req);
    if (len < 0) {
        *code = len;
        return NULL;
    }
    char *response = malloc((size_t)len + 1);
    if (!response) {
        *code = AF_ERR_INTERNAL;
        return NULL;
    }
    int32_t got = af_raw_host_result(response, (size_t)len);
    if (got < 0) {
        free(response);
        *code = got;
        return NULL;
    }
    response[got] = '\0';
    char *content = af_get_string_dup(response, "content", NULL);
    free(response);
    *code = content ? 0 : AF_ERR_INTERNAL;
    return content;
}

#endif /* AGENTFLOW_H */
