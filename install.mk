# install.mk - `make install` and `make uninstall` (included by the top
# Makefile after the tools' rules).  Table-driven: every tool in TOOLS, and
# its man page man/TOOL.8 when it has one (tests/cli/t-manpages.sh fails
# for a tool without one).
#
#   make install [PREFIX=/usr/local] [DESTDIR=]    also SBINDIR, LIBDIR,
#   make uninstall [PREFIX=...] [DESTDIR=]         INCLUDEDIR, MANDIR, ...
#
# What goes where (PREFIX=/usr/local):
#   sbin/thin_*                                  the tools
#   share/man/man8/thin_*.8, share/man/man3/libthinmeta.3
#   lib/libthinmeta.so.MAJOR.MINOR.PATCH, lib/libthinmeta.so.MAJOR and
#       lib/libthinmeta.so (symlinks), lib/libthinmeta.a
#   include/thinmeta/thinmeta.h                  the stable API, the only header
#       installed: the other headers in include/thinmeta/ (the engine's
#       internals, the salvager's repair.h among them) are not a public API;
#       their symbols are hidden in libthinmeta.so, and the tools link the
#       static library from the build directory
#   lib/pkgconfig/thinmeta.pc
#   share/bash-completion/completions/thinmeta, and one symlink to it per
#       tool (bash-completion loads completions by command name)
#
# Nothing here runs as part of `make` or `make check` except the shared
# library, which `all` builds (so that it is compiled warning-free with the
# rest).  Installing strips nothing.

PREFIX      ?= /usr/local
DESTDIR     ?=
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
DATAROOTDIR ?= $(PREFIX)/share
MANDIR      ?= $(DATAROOTDIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR ?= $(DATAROOTDIR)/bash-completion/completions
INSTALL     ?= install

all: $(SHLIB)

INSTALL_MAN8    = $(wildcard $(TOOLS:%=man/%.8))
INSTALL_MAN3    = $(wildcard man/libthinmeta.3)
INSTALL_HEADERS = include/thinmeta/thinmeta.h
COMPLETION      = contrib/bash-completion/thinmeta

.PHONY: install uninstall print-tools
install: all $(LIB)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR)/thinmeta $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0755 $(TOOL_BINS) $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME)
	ln -sf $(SHLIB_SONAME) $(DESTDIR)$(LIBDIR)/libthinmeta.so
	$(INSTALL) -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 0644 $(INSTALL_HEADERS) $(DESTDIR)$(INCLUDEDIR)/thinmeta/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(LIB_VERSION)|g' \
	    contrib/pkgconfig/thinmeta.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/thinmeta.pc
	$(if $(INSTALL_MAN8),$(INSTALL) -m 0644 $(INSTALL_MAN8) $(DESTDIR)$(MANDIR)/man8/)
	$(if $(INSTALL_MAN3),$(INSTALL) -m 0644 $(INSTALL_MAN3) $(DESTDIR)$(MANDIR)/man3/)
	$(INSTALL) -m 0644 $(COMPLETION) $(DESTDIR)$(BASHCOMPDIR)/thinmeta
	for t in $(TOOLS); do ln -sf thinmeta $(DESTDIR)$(BASHCOMPDIR)/$$t || exit 1; done

# Removes exactly what install puts in place, then the directories of ours
# that are left empty.
uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(SBINDIR)/%)
	rm -f $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME) \
		$(DESTDIR)$(LIBDIR)/libthinmeta.so $(DESTDIR)$(LIBDIR)/libthinmeta.a
	rm -f $(INSTALL_HEADERS:include/thinmeta/%=$(DESTDIR)$(INCLUDEDIR)/thinmeta/%)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/thinmeta.pc
	rm -f $(TOOLS:%=$(DESTDIR)$(MANDIR)/man8/%.8) $(DESTDIR)$(MANDIR)/man3/libthinmeta.3
	rm -f $(DESTDIR)$(BASHCOMPDIR)/thinmeta $(TOOLS:%=$(DESTDIR)$(BASHCOMPDIR)/%)
	-rmdir $(DESTDIR)$(INCLUDEDIR)/thinmeta 2>/dev/null

# The tools in TOOLS, one per line (tests/cli/t-manpages.sh and
# t-completion.sh read it: a tool that lands later is covered).
print-tools:
	@printf '%s\n' $(TOOLS)

# tests/cli/t-install.sh runs `make install` into a scratch DESTDIR with the
# build directory the suite tests.
check-cli check-slow: export THINMETA_BUILD = $(abspath $(BUILD))
check-cli check-slow: export THINMETA_SANITIZE = $(SANITIZE)

