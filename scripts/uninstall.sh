#!/usr/bin/env bash
# Undo scripts/install.sh (same PREFIX and HELPER_DIR). Leaves mounts and pins
# alone: unmount the tree first; pins are kernel bind mounts that outlive it.
set -euo pipefail
PREFIX=${PREFIX:-/usr/local}
HELPER_DIR=${HELPER_DIR:-/sbin}
rm -f "$PREFIX/sbin/nsfuse" "$PREFIX/share/man/man8/nsfuse.8"
if grep -q "installed by nsfuse's scripts/install.sh" "$HELPER_DIR/mount.nsfuse" 2>/dev/null; then
  rm -f "$HELPER_DIR/mount.nsfuse"
fi
echo "removed nsfuse from $PREFIX and $HELPER_DIR"
