/* cmd_report.c: `hymeval report DIR`: (re)writes DIR/report.html and
   DIR/report.md (with its PNG pictures) from DIR's run.json, summary.json and
   samples.jsonl. */
#include <stdio.h>

#include "cli.h"
#include "report.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval report DIR\n\n"
            "Writes DIR/report.html (self-contained: styles inline, pictures as inline SVG, no\n"
            "scripts or network) and DIR/report.md (pictures as PNG files beside it: the NIAH\n"
            "heatmaps, accuracy by context length, and curves of any grouped metrics) from the\n"
            "results directory DIR that `hymeval run` wrote.\n");
}

int cmd_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        usage(stderr);
        return EXIT_USAGE;
    }
    Err err;
    if (report_write(argv[1], &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    printf("%s/report.html\n%s/report.md\n", argv[1], argv[1]);
    return EXIT_OK;
}
