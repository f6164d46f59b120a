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

/* Shared option helpers: kd_cli_is_help, kd_cli_parse_list, kd_cli_print_metrics. */
#include "cli_util.h"

#endif
