/* badjson — test agent. Exits 0 but prints `not json {`, which is not valid output. */
#include "agentflow.h"

int main(void) {
    fputs("not json {", stdout);
    return 0;
}
