/* PLACEHOLDER: replaced by the real implementation. */
#include "cli.h"
int cmd_data(int argc, char **argv) { (void)argc; (void)argv; return 1; }
