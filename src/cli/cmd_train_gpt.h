/* lethe train --model gpt: GPT language models on text corpora. */
#ifndef LETHE_CMD_TRAIN_GPT_H
#define LETHE_CMD_TRAIN_GPT_H

/* argv as cmd_train's (argv[0] is the verb); returns an exit code. */
int cmd_train_gpt(int argc, char **argv);

/* 1 when argv asks for --model gpt. */
int cmd_train_wants_gpt(int argc, char **argv);

#endif
