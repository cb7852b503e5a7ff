/* cmd_devices.c: `hymeval devices`: the backends this build has and the
   devices they see. */
#include <stdio.h>

#include "cli.h"
#ifdef HYMEVAL_HAVE_CUDA
#include "cuda_info.h"
#endif

int cmd_devices(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        printf("usage: hymeval devices\n\nLists the backends built in and the devices they see.\n");
        return cli_wants_help(argc, argv) ? EXIT_OK : EXIT_USAGE;
    }
    printf("cpu: FP32 reference backend (BF16 emulation for precision studies)\n");
#ifdef HYMEVAL_HAVE_CUDA
    char buf[4096];
    int n = cuda_describe(buf, sizeof buf);
    printf("%s\n", buf);
    return n > 0 ? EXIT_OK : EXIT_FAIL;
#else
    printf("cuda: not built (configure with -Dcuda=enabled)\n");
    return EXIT_OK;
#endif
}
