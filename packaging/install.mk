# Installing the library the way system libraries install, and packaging it.
#   make install   [PREFIX=/usr/local] [libdir=$(PREFIX)/lib] [DESTDIR=]  shared library with SONAME and
#                  symlinks (stripped; debug info in libdir/.debug), static library, header, wsffi.pc,
#                  CMake package (find_package(wsffi) -> wsffi::wsffi, wsffi::wsffi_static)
#   make uninstall the same variables; removes exactly the files install wrote
#   make deb       Debian packages libwsffi$(WSFFI_ABI) and libwsffi-dev under build/deb (dpkg-deb)
#   make test-install  builds a program out of tree against an installed copy (pkg-config, static
#                  pkg-config, CMake find_package), then against the .deb installed with dpkg -i
WSFFI_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
WSFFI_MAJOR   := $(word 1,$(subst ., ,$(WSFFI_VERSION)))
WSFFI_MINOR   := $(word 2,$(subst ., ,$(WSFFI_VERSION)))
# The SONAME's version (build.rs sets the same): major.minor before 1.0, then major.
WSFFI_ABI     := $(if $(filter 0,$(WSFFI_MAJOR)),0.$(WSFFI_MINOR),$(WSFFI_MAJOR))
# What the static library needs besides itself (rustc --print native-static-libs).
WSFFI_STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
wsffi_space := $(subst ,, )

PREFIX     ?= /usr/local
libdir     ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
DESTDIR    ?=

WSFFI_REAL := libwsffi.so.$(WSFFI_VERSION)
WSFFI_SO   := libwsffi.so.$(WSFFI_ABI)
# Every file install writes, relative to DESTDIR: uninstall removes these and nothing else.
WSFFI_INSTALLED := $(libdir)/$(WSFFI_REAL) $(libdir)/$(WSFFI_SO) $(libdir)/libwsffi.so \
	$(libdir)/.debug/$(WSFFI_REAL).debug $(libdir)/libwsffi.a $(includedir)/wsffi.h \
	$(libdir)/pkgconfig/wsffi.pc $(libdir)/cmake/wsffi/wsffiConfig.cmake \
	$(libdir)/cmake/wsffi/wsffiConfigVersion.cmake

.PHONY: install uninstall deb test-install
install: lib header-check
	@d='$(DESTDIR)'; \
	install -d $$d$(libdir)/.debug $$d$(includedir) $$d$(libdir)/pkgconfig $$d$(libdir)/cmake/wsffi && \
	objcopy --only-keep-debug target/release/libwsffi.so $$d$(libdir)/.debug/$(WSFFI_REAL).debug && \
	chmod 644 $$d$(libdir)/.debug/$(WSFFI_REAL).debug && \
	objcopy --strip-unneeded --add-gnu-debuglink=$$d$(libdir)/.debug/$(WSFFI_REAL).debug \
	  target/release/libwsffi.so $$d$(libdir)/$(WSFFI_REAL) && \
	chmod 755 $$d$(libdir)/$(WSFFI_REAL) && \
	ln -sf $(WSFFI_REAL) $$d$(libdir)/$(WSFFI_SO) && \
	ln -sf $(WSFFI_SO) $$d$(libdir)/libwsffi.so && \
	install -m 644 target/release/libwsffi.a $$d$(libdir)/libwsffi.a && \
	strip --strip-debug $$d$(libdir)/libwsffi.a && \
	install -m 644 include/wsffi.h $$d$(includedir)/wsffi.h && \
	sed -e 's|@PREFIX@|$(PREFIX)|g; s|@LIBDIR@|$(libdir)|g; s|@INCLUDEDIR@|$(includedir)|g' \
	    -e 's|@VERSION@|$(WSFFI_VERSION)|g; s|@STATIC_LIBS@|$(WSFFI_STATIC_LIBS)|g' \
	    packaging/wsffi.pc.in > $$d$(libdir)/pkgconfig/wsffi.pc && \
	sed -e 's|@LIBDIR@|$(libdir)|g; s|@INCLUDEDIR@|$(includedir)|g; s|@VERSION@|$(WSFFI_VERSION)|g' \
	    -e 's|@ABI@|$(WSFFI_ABI)|g; s|@STATIC_LIBS@|$(subst $(wsffi_space),;,$(WSFFI_STATIC_LIBS))|g' \
	    packaging/cmake/wsffiConfig.cmake.in > $$d$(libdir)/cmake/wsffi/wsffiConfig.cmake && \
	sed -e 's|@VERSION@|$(WSFFI_VERSION)|g; s|@ABI@|$(WSFFI_ABI)|g' \
	    packaging/cmake/wsffiConfigVersion.cmake.in > $$d$(libdir)/cmake/wsffi/wsffiConfigVersion.cmake && \
	chmod 644 $$d$(libdir)/pkgconfig/wsffi.pc $$d$(libdir)/cmake/wsffi/*.cmake && \
	echo "installed wsffi $(WSFFI_VERSION) into $$d$(PREFIX)"

uninstall:
	@d='$(DESTDIR)'; \
	for f in $(WSFFI_INSTALLED); do rm -f "$$d$$f"; done; \
	for dir in $(libdir)/cmake/wsffi $(libdir)/.debug; do rmdir "$$d$$dir" 2>/dev/null || true; done; \
	echo "removed wsffi from $$d$(PREFIX)"

# The header in include/ must match the library it is installed with.
.PHONY: header-check
header-check:
	$(CARGO) test --release --test header header_is_up_to_date -q

deb: lib
	@bash packaging/debian/build-deb.sh $(BUILD)/deb $(WSFFI_VERSION) $(WSFFI_ABI)

test-install: lib
	@bash packaging/tests/run.sh $(BUILD)/install-test $(WSFFI_VERSION) $(WSFFI_ABI)
