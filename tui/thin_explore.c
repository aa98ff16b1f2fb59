/*
 * thin_explore - browse thin-provisioning metadata in a terminal: the live
 * trees and the held metadata snapshot, damage included (docs/thin_explore.md).
 *
 * This file is the terminal: options, curses, keys to commands, prompts,
 * attributes to colours.  Everything the screen says comes from the model
 * (tui/model.h), which knows nothing of curses.
 */
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "thinmeta/node_path.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: thin_explore [OPTIONS] <INPUT>\n"
"\n"
"Browse thin-provisioning metadata: the superblock, devices, mappings, btree\n"
"nodes, space maps and any block in hex; the live trees and the held metadata\n"
"snapshot.  The metadata is opened read-only.  Press ? for the keys.\n"
"\n"
"Arguments:\n"
"  <INPUT>  The metadata device or file\n"
"\n"
"Options:\n"
"  -m, --metadata-snap          Start in the held metadata snapshot\n"
"  -p, --node-path <NODE_PATH>  Go to the node of a path thin_check printed\n"
"  -b, --block <BLOCK>          Open a metadata block\n"
"  -h, --help                   Print help\n"
"  -V, --version                Print version\n"
"\n"
"Exit status: 0 success, 1 failure (the input cannot be opened, no terminal),\n"
"2 command-line misuse.\n");
}

static const struct option long_opts[] = {
	{ "metadata-snap", no_argument, NULL, 'm' },
	{ "node-path", required_argument, NULL, 'p' },
	{ "block", required_argument, NULL, 'b' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* ------------------------------------------------------------------ */
/* Attributes */

static chtype attrs[XA__COUNT];

static void setup_attrs(void)
{
	static const struct { short fg, bg; chtype extra; chtype mono; } map[XA__COUNT] = {
		[XA_NORMAL] = { -1, -1, 0, A_NORMAL },
		[XA_TITLE] = { COLOR_WHITE, COLOR_BLUE, A_BOLD, A_REVERSE | A_BOLD },
		[XA_HEAD] = { COLOR_CYAN, -1, 0, A_BOLD },
		[XA_LABEL] = { COLOR_YELLOW, -1, A_UNDERLINE, A_UNDERLINE },
		[XA_PTR] = { COLOR_GREEN, -1, 0, A_BOLD },
		[XA_BAD] = { COLOR_RED, -1, A_BOLD, A_BOLD | A_UNDERLINE },
		[XA_DIM] = { -1, -1, A_DIM, A_DIM },
		[XA_ADD] = { COLOR_GREEN, -1, A_BOLD, A_BOLD },
		[XA_DEL] = { COLOR_RED, -1, 0, A_UNDERLINE },
		[XA_CHG] = { COLOR_YELLOW, -1, A_BOLD, A_BOLD },
		[XA_FIELD1] = { COLOR_CYAN, -1, 0, A_NORMAL },
		[XA_FIELD2] = { COLOR_MAGENTA, -1, 0, A_UNDERLINE },
		[XA_SEL] = { -1, -1, A_REVERSE, A_REVERSE },
		[XA_SELFIELD] = { COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD },
		[XA_STATUS] = { COLOR_BLACK, COLOR_WHITE, 0, A_REVERSE },
		[XA_STATUS_BAD] = { COLOR_WHITE, COLOR_RED, A_BOLD, A_REVERSE | A_BOLD },
	};
	int colour = has_colors() && start_color() == OK;

	if (colour)
		use_default_colors();
	for (int a = 0; a < XA__COUNT; a++) {
		if (!colour || (map[a].fg == -1 && map[a].bg == -1)) {
			attrs[a] = colour ? map[a].extra : map[a].mono;
			continue;
		}
		init_pair((short)a, map[a].fg, map[a].bg);
		attrs[a] = COLOR_PAIR(a) | map[a].extra;
	}
}

/* ------------------------------------------------------------------ */
/* Drawing */

static struct xp_line *lines;
static unsigned nr_lines;

static void draw(struct xp *x)
{
	unsigned rows = (unsigned)LINES, cols = (unsigned)COLS;

	erase();
	if (rows < XP_MIN_ROWS || cols < XP_MIN_COLS) {
		mvprintw(0, 0, "thin_explore needs %ux%u; this terminal is %ux%u.", XP_MIN_COLS,
			 XP_MIN_ROWS, cols, rows);
		mvprintw(1, 0, "Enlarge it, or press q to quit.");
		refresh();
		return;
	}
	if (rows > nr_lines) {
		struct xp_line *n = realloc(lines, rows * sizeof(*n));
		if (!n)
			return;
		lines = n;
		nr_lines = rows;
	}
	xp_resize(x, rows, cols);
	xp_render(x, lines);
	for (unsigned r = 0; r < rows; r++) {
		const struct xp_line *l = &lines[r];
		unsigned len = (unsigned)strlen(l->text);
		unsigned c = 0;
		while (c < len && c < cols) {
			unsigned e = c;
			while (e < len && e < cols && l->attr[e] == l->attr[c])
				e++;
			attrset(attrs[l->attr[c] < XA__COUNT ? l->attr[c] : 0]);
			mvaddnstr((int)r, (int)c, l->text + c, (int)(e - c));
			c = e;
		}
	}
	attrset(A_NORMAL);
	refresh();
}

/* Read a line in the last row; 0 with @buf filled, -1 if cancelled. */
static int prompt(const char *what, char *buf, size_t n)
{
	size_t len = 0;
	int row = LINES - 1;

	buf[0] = '\0';
	curs_set(1);
	for (;;) {
		attrset(attrs[XA_STATUS]);
		mvhline(row, 0, ' ', COLS);
		mvprintw(row, 0, "%s%s", what, buf);
		attrset(A_NORMAL);
		refresh();
		int ch = getch();
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
			break;
		if (ch == 27 || ch == 7 || ch == 3) {	/* Esc, ^G, ^C */
			curs_set(0);
			return -1;
		}
		if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
			if (len)
				buf[--len] = '\0';
			else {
				curs_set(0);
				return -1;
			}
			continue;
		}
		if (ch == KEY_RESIZE)
			continue;
		if (ch >= 32 && ch < 127 && len + 1 < n) {
			buf[len++] = (char)ch;
			buf[len] = '\0';
		}
	}
	curs_set(0);
	return 0;
}

static int command_of(int ch, enum xp_cmd *c)
{
	switch (ch) {
	case 'j': case KEY_DOWN: case 14: *c = XC_DOWN; return 1;
	case 'k': case KEY_UP: case 16: *c = XC_UP; return 1;
	case ' ': case 'f': case KEY_NPAGE: case 6: *c = XC_PGDN; return 1;
	case 'b': case KEY_PPAGE: case 2: *c = XC_PGUP; return 1;
	case '<': case KEY_HOME: *c = XC_HOME; return 1;
	case '>': case 'G': case KEY_END: *c = XC_END; return 1;
	case '\n': case '\r': case KEY_ENTER: case 'l': case KEY_RIGHT: *c = XC_ENTER; return 1;
	case 'h': case KEY_BACKSPACE: case 127: case 8: case KEY_LEFT: *c = XC_BACK; return 1;
	case ']': *c = XC_NEXT_SIB; return 1;
	case '[': *c = XC_PREV_SIB; return 1;
	case '\t': case '.': *c = XC_NEXT_FIELD; return 1;
	case KEY_BTAB: case ',': *c = XC_PREV_FIELD; return 1;
	case 'x': *c = XC_HEX; return 1;
	case 'm': *c = XC_SWITCH; return 1;
	case 's': *c = XC_SUPER; return 1;
	case 'd': *c = XC_DEVICES; return 1;
	case 'S': *c = XC_SPACEMAPS; return 1;
	case 'D': *c = XC_DIFF; return 1;
	case '?': *c = XC_HELP; return 1;
	case 't': *c = XC_TREE; return 1;
	case 'r': *c = XC_REFS; return 1;
	case 'L': *c = XC_LOCATE; return 1;
	case 'n': *c = XC_SEARCH_NEXT; return 1;
	case 'N': *c = XC_SEARCH_PREV; return 1;
	default: return 0;
	}
}

static void run(struct xp *x)
{
	char buf[128];

	for (;;) {
		draw(x);
		int ch = getch();
		enum xp_cmd c;

		if (ch == 'q' || ch == 'Q')
			return;
		if (ch == KEY_RESIZE || ch == ERR)
			continue;
		if (ch == 12) {		/* ^L */
			clearok(curscr, TRUE);
			continue;
		}
		if (LINES < XP_MIN_ROWS || COLS < XP_MIN_COLS)
			continue;
		if (command_of(ch, &c)) {
			xp_cmd(x, c);
			continue;
		}
		switch (ch) {
		case 'g': case 'v': case 'R': case 'c': case '/':
			if (prompt(xp_prompt(x, ch), buf, sizeof(buf)))
				break;
			if (ch == 'g')
				xp_goto_block(x, buf);
			else if (ch == 'v')
				xp_goto_vblock(x, buf);
			else if (ch == 'R')
				xp_data_refs(x, buf);
			else if (ch == 'c')
				xp_count(x, buf);
			else
				xp_search(x, buf, 0);
			break;
		default:
			xp_set_status(x, 0, "unknown key (? lists the keys)");
			break;
		}
	}
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const char *node_path = NULL;
	int snap = 0, opt, have_block = 0;
	uint64_t block = 0;
	struct tm_error e;
	struct xp *x;

	tool_init("thin_explore");
	while ((opt = getopt_long(argc, argv, "mp:b:hV", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			snap = 1;
			break;
		case 'p':
			node_path = optarg;
			break;
		case 'b':
			block = opt_u64("--block", optarg);
			have_block = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s\n", THINMETA_VERSION);
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'thin_explore --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind == argc)
		usage_error("the following required arguments were not provided: <INPUT>");
	if (argc - optind > 1)
		usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (node_path) {
		uint64_t path[TM_NODE_PATH_MAX + 1];
		unsigned len;
		tm_error_clear(&e);
		if (tm_node_path_decode(node_path, path, TM_NODE_PATH_MAX + 1, &len, &e))
			usage_error("invalid value '%s' for '--node-path': %s", node_path, e.msg);
	}
	const char *path = argv[optind];
	if (check_input_file(path, 1))
		return EXIT_FAIL;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		msg("standard input and output must be a terminal");
		return EXIT_FAIL;
	}
	tm_error_clear(&e);
	if (xp_open(path, snap, &x, &e)) {
		msg("%s", e.msg);
		return EXIT_FAIL;
	}
	if (have_block) {
		char num[32];
		snprintf(num, sizeof(num), "%llu", (unsigned long long)block);
		if (xp_goto_block(x, num)) {
			msg("%s: %s", path, xp_status(x));
			xp_close(x);
			return EXIT_FAIL;
		}
	}
	if (node_path)
		xp_open_node_path(x, node_path);

	setlocale(LC_ALL, "");
	SCREEN *scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		msg("cannot drive this terminal (TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
		xp_close(x);
		return EXIT_FAIL;
	}
	set_escdelay(25);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	setup_attrs();
	run(x);
	endwin();
	delscreen(scr);
	xp_close(x);
	free(lines);
	return EXIT_OK;
}
