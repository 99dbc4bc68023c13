; Boot code for SeaBiosBootTests (VmPortal): the El Torito no-emulation boot image of the test CD, and the MBR of the test disk.
; SeaBIOS loads it at linear 0x7C00 and jumps to 0000:7C00 with DL = the CD's BIOS drive number;
; the first instruction normalises CS to 07C0 so the code can use offsets from 0.
; It prints a banner through int 10h (teletype), reads block 21 of the boot drive with
; int 13h AH=42h (extended read: an ATAPI READ(10) on the CD, ATA READ SECTORS on the disk), prints the
; NUL-terminated text at the start of that block, and halts.
; Regenerate the bytes embedded in the test with:  nasm -f bin cdboot.asm -o cdboot.bin && xxd -p cdboot.bin
bits 16
org 0
start:
    jmp 0x07C0:main
main:
    push cs
    pop ds
    mov si, banner
    call print
    mov si, dap
    mov ah, 0x42
    int 0x13
    jc failed
    push ds
    xor ax, ax
    mov ds, ax
    mov si, 0x0600
    call print
    pop ds
    mov si, done
    call print
hang:
    hlt
    jmp hang
failed:
    mov si, fail
    call print
    jmp hang
print:
    lodsb
    test al, al
    jz .ret
    mov ah, 0x0e
    mov bx, 0x0007
    int 0x10
    jmp print
.ret:
    ret
dap:
    db 16, 0        ; size, reserved
    dw 1            ; blocks
    dw 0x0600, 0    ; buffer offset, segment
    dq 21           ; LBA (2048-byte blocks)
banner: db "CDBOOT: reading block 21", 13, 10, 0
done:   db 13, 10, "CDBOOT: done", 13, 10, 0
fail:   db "CDBOOT: read failed", 13, 10, 0
