/* cli.h: the hymeval subcommands and the small argument helpers they share. */
#ifndef HYMEVAL_CLI_H
#define HYMEVAL_CLI_H

#include <stdint.h>

int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_init_model(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_gendata(int argc, char **argv);
int cmd_erf(int argc, char **argv);
int cmd_drift(int argc, char **argv);
int cmd_cache(int argc, char **argv);

/* Exit codes: 0 ok, 1 failure (bad input, runtime error), 2 usage error. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Returns the value after option argv[*i] (advancing *i), or NULL after
   printing "OPTION needs a value" to stderr. */
const char *cli_value(int argc, char **argv, int *i);
/* Parses a non-negative integer option value; -1 (with a message) if bad. */
long cli_long(const char *opt, const char *value, long min, long max);
/* Parses "1,2,3" or "[1, 2, 3]" into a malloc'd id array; -1 if malformed. */
int cli_parse_ids(const char *text, int32_t **ids, int *n);
/* 1 if argv has -h or --help. */
int cli_wants_help(int argc, char **argv);

/* The project's default tokenizer (models/tokenizer/), embedded in the binary. */
extern const unsigned char default_tokenizer_json[];
extern const unsigned long default_tokenizer_json_len;
extern const unsigned char default_tokenizer_config_json[];
extern const unsigned long default_tokenizer_config_json_len;

#endif
