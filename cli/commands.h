/* The kdispatch command's subcommands: each is int fn(argc, argv) with argv[0] the
 * subcommand's name, returning the process exit status. */
#ifndef KD_CLI_COMMANDS_H
#define KD_CLI_COMMANDS_H

int kd_cmd_devices(int argc, char **argv);
int kd_cmd_compare(int argc, char **argv);
int kd_cmd_bench(int argc, char **argv);
int kd_cmd_tune(int argc, char **argv);
int kd_cmd_gguf(int argc, char **argv);
int kd_cmd_ptx_check(int argc, char **argv);
int kd_cmd_fleet(int argc, char **argv);

/* Shared option helpers. */
int kd_cli_is_help(const char *arg);
/* Parses "1,8" into up to cap values; returns the count or -1. */
int kd_cli_parse_list(const char *s, long long *out, int cap);

#endif
