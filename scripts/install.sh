#!/usr/bin/env bash
# Install nsfuse: the binary (PREFIX/sbin), the man page (PREFIX/share/man),
# and the mount(8) helper (HELPER_DIR/mount.nsfuse), so that all of these work:
#   nsfuse /mnt/ns
#   mount -t nsfuse none /mnt/ns            (through HELPER_DIR/mount.nsfuse)
#   mount -t fuse.nsfuse nsfuse /mnt/ns     (through mount.fuse3, package fuse3)
#   an /etc/fstab line:  none /mnt/ns nsfuse defaults 0 0
# Environment: PREFIX (default /usr/local), HELPER_DIR (default /sbin),
# NSFUSE_BIN (a built binary to install instead of building one).
set -euo pipefail
PREFIX=${PREFIX:-/usr/local}
HELPER_DIR=${HELPER_DIR:-/sbin}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${NSFUSE_BIN:-}
if [ -z "$bin" ]; then
  (cd "$here" && cargo build --release --quiet)
  bin=$here/target/release/nsfuse
fi
install -D -m 0755 "$bin" "$PREFIX/sbin/nsfuse"
install -D -m 0644 "$here/doc/nsfuse.8" "$PREFIX/share/man/man8/nsfuse.8"
mkdir -p "$HELPER_DIR"
cat > "$HELPER_DIR/mount.nsfuse" <<HELPER
#!/bin/sh
# mount(8) helper for nsfuse, installed by nsfuse's scripts/install.sh.
# mount calls: mount.nsfuse SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]
exec "$PREFIX/sbin/nsfuse" "\$@"
HELPER
chmod 0755 "$HELPER_DIR/mount.nsfuse"
echo "installed $PREFIX/sbin/nsfuse, $HELPER_DIR/mount.nsfuse and nsfuse(8)"
