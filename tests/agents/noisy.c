/* noisy — test agent for the output cap. Writes a 3 MiB JSON string to stdout. */
#include "agentflow.h"

int main(void) {
    static char block[64 * 1024];
    memset(block, 'x', sizeof block);
    putchar('"');
    for (int i = 0; i < 48; i++) fwrite(block, 1, sizeof block, stdout);
    putchar('"');
    return 0;
}
