/* Consumer of the installed SDK (C89). */
#include <idnode/sdk.h>

#include <stdio.h>

int main(void) {
    idnode_client* c = NULL;
    int st = idnode_client_open("{\"url\":\"https://127.0.0.1:8443\"}", &c);
    if (st != IDNODE_OK)
        return 1;
    idnode_client_close(c);
    printf("idnode-sdk %s (C): %s\n", idnode_version(), idnode_strerror(IDNODE_E_TIMEOUT));
    return 0;
}
