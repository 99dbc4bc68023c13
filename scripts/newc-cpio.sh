#!/usr/bin/env bash
# Writes a Linux initramfs archive (cpio "newc" format, uncompressed) to stdout from a list of entries on
# stdin, without root and without mknod: device nodes are plain archive entries with a mode and rdev.
# Reproducible: every entry gets uid/gid 0, mtime $SOURCE_DATE_EPOCH (default 0) and inode numbers in
# list order, so the same input gives the same bytes.
#
# Input lines (the syntax of the kernel's usr/gen_init_cpio; '#' starts a comment):
#   dir   <name> <mode>
#   file  <name> <mode> <source-path>
#   nod   <name> <mode> <c|b> <major> <minor>
#   slink <name> <target> <mode>
# Modes are octal permission bits (e.g. 0755). Names are archive paths ("/init", "/dev/console").
#
# Format (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst): each entry is the
# magic "070701", 13 eight-digit hex fields, the NUL-terminated name padded to a multiple of 4 bytes, then
# the data padded to a multiple of 4; the archive ends with an entry named "TRAILER!!!".
set -euo pipefail

MTIME="${SOURCE_DATE_EPOCH:-0}"
ino=300000

pad4() { # writes zero bytes to bring a length of $1 up to a multiple of 4
  local n=$(( (4 - $1 % 4) % 4 ))
  if [ "$n" -gt 0 ]; then head -c "$n" /dev/zero; fi
}

# header <name> <mode(int)> <nlink> <filesize> <rdevmajor> <rdevminor>
header() {
  local name="${1#/}"
  local namesize=$(( ${#name} + 1 ))
  ino=$((ino + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$2" 0 0 "$3" "$MTIME" "$4" 0 0 "$5" "$6" "$namesize" 0
  printf '%s\0' "$name"
  pad4 $(( 110 + namesize ))
}

while read -r kind name a b c d || [ -n "${kind:-}" ]; do
  case "$kind" in
    ''|'#'*) continue ;;
    dir)   header "$name" $(( 0040000 | 0$a )) 2 0 0 0 ;;
    file)
      [ -f "$b" ] || { echo "newc-cpio: missing source file $b" >&2; exit 1; }
      size=$(stat -c %s "$b")
      header "$name" $(( 0100000 | 0$a )) 1 "$size" 0 0
      cat "$b"
      pad4 "$size" ;;
    nod)
      case "$b" in c) type=0020000 ;; b) type=0060000 ;; *) echo "newc-cpio: bad node type $b" >&2; exit 1 ;; esac
      header "$name" $(( type | 0$a )) 1 0 "$c" "$d" ;;
    slink)
      header "$name" $(( 0120000 | 0$b )) 1 "${#a}" 0 0
      printf '%s' "$a"
      pad4 "${#a}" ;;
    *) echo "newc-cpio: unknown entry kind '$kind'" >&2; exit 1 ;;
  esac
done

header "TRAILER!!!" 0 1 0 0 0
