/*
 * files — test agent for the step's filesystem.
 *
 * input.ops is a list of {"op": "read"|"write"|"append"|"mkdir"|"rmdir"|"unlink"|"rename"|"list",
 * "path": "...", "to": "..." (rename), "data": "..." (write)}; the agent performs them in order
 * and outputs [{"ok": true, "data": "..."} or {"ok": false, "errno": N, "error": "..."}, ...]
 * (data: a read's first 4 KiB, or a listing's names separated by spaces).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentflow.h"

static char data[4096];

static int perform(const char *op, const char *path, const char *to, const char *text) {
    data[0] = '\0';
    if (!strcmp(op, "read")) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) return -1;
        ssize_t n = read(fd, data, sizeof data - 1);
        close(fd);
        if (n < 0) return -1;
        data[n] = '\0';
        return 0;
    }
    if (!strcmp(op, "write") || !strcmp(op, "append")) {
        int flags = O_WRONLY | O_CREAT | (!strcmp(op, "write") ? O_TRUNC : O_APPEND);
        int fd = open(path, flags, 0644);
        if (fd < 0) return -1;
        ssize_t n = write(fd, text, strlen(text));
        close(fd);
        return n < 0 ? -1 : 0;
    }
    if (!strcmp(op, "mkdir")) return mkdir(path, 0755);
    if (!strcmp(op, "rmdir")) return rmdir(path);
    if (!strcmp(op, "unlink")) return unlink(path);
    if (!strcmp(op, "rename")) return rename(path, to);
    if (!strcmp(op, "list")) {
        DIR *dir = opendir(path);
        if (!dir) return -1;
        struct dirent *e;
        size_t used = 0;
        while ((e = readdir(dir)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            int n = snprintf(data + used, sizeof data - used, "%s%s", used ? " " : "", e->d_name);
            if (n < 0 || (size_t)n >= sizeof data - used) break;
            used += (size_t)n;
        }
        closedir(dir);
        return 0;
    }
    errno = EINVAL;
    return -1;
}

int main(void) {
    char *doc = af_read_stdin(NULL);
    const char *it = af_json_get(doc, "input.ops", NULL), *v;
    size_t vlen;
    int first = 1;
    putchar('[');
    while (it && af_json_next(&it, NULL, NULL, &v, &vlen)) {
        char *item = malloc(vlen + 1);
        memcpy(item, v, vlen);
        item[vlen] = '\0';
        char op[32] = "", path[1024] = "", to[1024] = "", text[1024] = "";
        af_get_string(item, "op", op, sizeof op);
        af_get_string(item, "path", path, sizeof path);
        af_get_string(item, "to", to, sizeof to);
        af_get_string(item, "data", text, sizeof text);
        free(item);
        errno = 0;
        int rc = perform(op, path, to, text);
        fputs(first ? "" : ",", stdout);
        first = 0;
        if (rc == 0) {
            fputs("{\"ok\":true,\"data\":", stdout);
            af_print_string(data, strlen(data));
            putchar('}');
        } else {
            int err = errno;
            printf("{\"ok\":false,\"errno\":%d,\"error\":", err);
            const char *msg = strerror(err);
            af_print_string(msg, strlen(msg));
            putchar('}');
        }
    }
    puts("]");
    return 0;
}
