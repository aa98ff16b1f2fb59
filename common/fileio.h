/*
 * fileio.h - whole-buffer pread/pwrite for the tools' data files (thin_pool
 * --data, thin_backup): retried on EINTR and short transfers.  Metadata
 * devices go through the engine's device layer instead (engine/io_file.c).
 */
#ifndef THINMETA_FILEIO_H
#define THINMETA_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read @n bytes at @off; what lies past the end of the file reads as
 * zeroes (a sparse data file).  0 or a negative errno. */
int fio_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Write @n bytes at @off.  0 or a negative errno (-EIO if nothing moved). */
int fio_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);

#endif
