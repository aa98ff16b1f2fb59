/* tool.c - messages, pre-flight file checks, numbers and buffered output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include "tool.h"

const char *tool_name = "thinmeta";

void tool_init(const char *name)
{
	tool_name = name;
	/* a closed pipe is an error from write(), not a silent death */
	signal(SIGPIPE, SIG_IGN);
}

void msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void msg_error(const char *path, const struct tm_error *e)
{
	if (e->msg[0])
		msg("%s: %s", path, e->msg);
	else
		msg("%s: %s", path, strerror(-e->err));
}

void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", tool_name);
	exit(EXIT_USAGE);
}

void tool_std_option(int c, char **argv, void (*usage)(FILE *))
{
	switch (c) {
	case 'h':
		usage(stdout);
		exit(EXIT_OK);
	case 'V':
		printf("%s\n", THINMETA_VERSION);
		exit(EXIT_OK);
	case ':':
		usage_error("option '%s' needs a value", argv[optind - 1]);
	default:
		usage_error("unrecognised option '%s'", argv[optind - 1]);
	}
}

int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

uint64_t opt_u64(const char *opt, const char *s)
{
	uint64_t v;

	if (parse_u64(s, &v))
		usage_error("invalid value '%s' for '%s': not a non-negative decimal number",
			    s ? s : "", opt);
	return v;
}

static int looks_like_xml(const char *path)
{
	char head[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	head[n] = '\0';
	char *p = head;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return !strncmp(p, "<superblock", 11) || !strncmp(p, "<?xml", 5) ||
	       !strncmp(p, "<!DOCTYPE", 9);
}

static int file_size(const char *path, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int check_input_file(const char *path, int reject_xml)
{
	struct stat st;
	uint64_t size;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			msg("Couldn't find input file '%s'", path);
		else
			msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		msg("Not a block device or regular file '%s'.", path);
		return -1;
	}
	if (access(path, R_OK) < 0) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if (file_size(path, &st, &size) < 0) {
		msg("%s: cannot read its size: %s", path, strerror(errno));
		return -1;
	}
	if (size < 4096) {
		msg("%s: Metadata device/file too small.  Is this binary metadata?", path);
		return -1;
	}
	if (reject_xml && looks_like_xml(path)) {
		msg("%s: This looks like XML.  This tool only supports the binary metadata format.",
		    path);
		return -1;
	}
	return 0;
}

int check_output_file(const char *path, uint64_t min_bytes)
{
	struct stat st;
	uint64_t size;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			msg("Couldn't find output file '%s'", path);
		else
			msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		msg("Not a block device or regular file '%s'.", path);
		return -1;
	}
	if (file_size(path, &st, &size) < 0) {
		msg("%s: cannot read its size: %s", path, strerror(errno));
		return -1;
	}
	if (size < min_bytes) {
		msg("%s: Output file too small.", path);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

int ob_open_fd(struct outbuf *ob, int fd, size_t cap)
{
	ob->fd = fd;
	ob->len = 0;
	ob->err = 0;
	ob->cap = cap ? cap : (1u << 20);
	ob->buf = malloc(ob->cap);
	return ob->buf ? 0 : -ENOMEM;
}

static void ob_drain(struct outbuf *ob)
{
	size_t off = 0;

	while (off < ob->len && !ob->err) {
		ssize_t w = write(ob->fd, ob->buf + off, ob->len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			ob->err = -errno;
			break;
		}
		off += (size_t)w;
	}
	ob->len = 0;
}

void ob_write(struct outbuf *ob, const char *s, size_t n)
{
	if (ob->err)
		return;
	if (ob->len + n > ob->cap) {
		ob_drain(ob);
		if (n > ob->cap) {
			while (n && !ob->err) {
				size_t k = n < ob->cap ? n : ob->cap;
				memcpy(ob->buf, s, k);
				ob->len = k;
				ob_drain(ob);
				s += k;
				n -= k;
			}
			return;
		}
	}
	memcpy(ob->buf + ob->len, s, n);
	ob->len += n;
}

char *ob_reserve(struct outbuf *ob, size_t n)
{
	if (ob->len + n > ob->cap)
		ob_drain(ob);
	return ob->buf + ob->len;
}

void ob_puts(struct outbuf *ob, const char *s)
{
	ob_write(ob, s, strlen(s));
}

void ob_u64(struct outbuf *ob, uint64_t v)
{
	char tmp[24];

	ob_write(ob, tmp, (size_t)(put_u64(tmp, v) - tmp));
}

int ob_flush(struct outbuf *ob)
{
	ob_drain(ob);
	return ob->err;
}

void ob_free(struct outbuf *ob)
{
	free(ob->buf);
	ob->buf = NULL;
}
