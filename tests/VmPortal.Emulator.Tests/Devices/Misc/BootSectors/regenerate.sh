#!/bin/sh
# Assembles the boot sectors and prints the base64 text pasted into SeaBiosChipsetTests.cs.
set -e
cd "$(dirname "$0")"
for f in floppy-read keyboard-serial; do
    nasm -f bin "$f.asm" -o "/tmp/$f.bin"
    printf '%s: ' "$f"; base64 -w0 "/tmp/$f.bin"; echo
done
