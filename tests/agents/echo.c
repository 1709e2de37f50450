/* echo — test agent. Output: the whole stdin document, byte for byte. */
#include "agentflow.h"

int main(void) {
    size_t len;
    char *doc = af_read_stdin(&len);
    if (!doc) return 1;
    fwrite(doc, 1, len, stdout);
    return 0;
}
