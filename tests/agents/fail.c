/* fail — test agent. Writes "boom: failing on purpose" to stderr and exits with code 3. */
#include "agentflow.h"

int main(void) {
    fputs("boom: failing on purpose\n", stderr);
    return 3;
}
