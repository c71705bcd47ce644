/* idnode/sdk.h compiles as ISO C89 (-std=c89 -pedantic) and its calls validate arguments. */
#include "idnode/sdk.h"

#include <stdio.h>
#include <string.h>

int sdk_c89_check(void) {
    idnode_client* c = NULL;
    char* out = NULL;
    int failures = 0;
    int st = idnode_client_open("{\"url\":\"ftp://x\"}", &c);
    if (st != IDNODE_E_INVALID_ARGUMENT || c != NULL ||
        strstr(idnode_last_error(), "https") == NULL) {
        printf("FAILED: bad url accepted (%d)\n", st);
        ++failures;
    }
    st = idnode_client_open("{\"url\":\"https://127.0.0.1:1\",\"bogus\":1}", &c);
    if (st != IDNODE_E_INVALID_ARGUMENT || strstr(idnode_last_error(), "bogus") == NULL) {
        printf("FAILED: unknown option accepted\n");
        ++failures;
    }
    st = idnode_client_open("{\"url\":\"https://127.0.0.1:1\",\"max_attempts\":1}", &c);
    if (st != IDNODE_OK) {
        printf("FAILED: open: %s\n", idnode_last_error());
        return failures + 1;
    }
    st = idnode_resolve(c, "88.1/x", NULL, &out);
    if (st != IDNODE_E_CONNECT || out != NULL) {
        printf("FAILED: resolve against nothing gave %d (%s)\n", st, idnode_strerror(st));
        ++failures;
    }
    st = idnode_resolve(c, "88.1/x", "{\"indices\":[0]}", &out);
    if (st != IDNODE_E_INVALID_ARGUMENT) {
        printf("FAILED: index 0 accepted\n");
        ++failures;
    }
    if (idnode_put(c, "merge", "{\"handle\":\"88.1/x\",\"values\":[]}", NULL) !=
        IDNODE_E_INVALID_ARGUMENT) {
        printf("FAILED: bad put mode accepted\n");
        ++failures;
    }
    idnode_free(out);
    idnode_client_close(c);
    return failures;
}
