/*
 * script.h - thin_pool's command interpreter (script.c): one command, or
 * one line of a script, run against the pool of a struct pctx.
 */
#ifndef THINMETA_POOL_SCRIPT_H
#define THINMETA_POOL_SCRIPT_H

#include "pool_tool.h"

/* What a command returns. */
enum { CMD_OK = 0, CMD_FAIL = 1, CMD_USAGE = 2 };

/* A script line holds fewer words than this. */
#define SCRIPT_MAX_WORDS 16

/*
 * Run the command @argv[0] with its @argc - 1 arguments.  Errors are
 * printed (msg()); in a script (@script set) prefixed by @where
 * ("FILE:LINE: "), engine errors always by @where ("PATH: ").
 */
int pool_exec(struct pctx *c, const char *where, int script, int argc, char **argv);

/*
 * One line of a script: '#' starts a comment, words are separated by
 * blanks; an empty line does nothing (CMD_OK).  @line is modified.
 */
int script_line(struct pctx *c, const char *where, char *line);

#endif
