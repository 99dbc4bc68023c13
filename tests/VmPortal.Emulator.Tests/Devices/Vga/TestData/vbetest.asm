; Real-mode driver for VgaBiosTests (VmPortal), run at 0000:0700 after vgabios-stdvga's POST.
; 1. int 10h AX=0003 (text mode 3), teletype "VGABIOS OK".
; 2. Stores the VBE mode info of mode 0x101 (640x480x8) at 0000:0800 (int 10h AX=4F01).
; 3. Sets VBE mode 0x101 without LFB (int 10h AX=4F02, BX=0x0101), selects bank 1 of window A
;    (int 10h AX=4F05) and writes colour 0x0F at A000:0010 (= linear offset 0x10010), then colour 0x09 at A000:0000
;    of bank 0 after switching back. AX of the last VBE call is left at 0000:0900. Then HLT.
; Regenerate: nasm -f bin vbetest.asm -o vbetest.bin && xxd -p vbetest.bin
bits 16
org 0x700
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ax, 0x0003
    int 0x10
    mov si, msg
.print:
    lodsb
    test al, al
    jz .printed
    mov ah, 0x0e
    mov bx, 0x0007
    int 0x10
    jmp .print
.printed:
    mov ax, 0x4f01
    mov cx, 0x0101
    mov di, 0x0800
    int 0x10
    mov ax, 0x4f02
    mov bx, 0x0101
    int 0x10
    mov ax, 0x4f05
    xor bx, bx
    mov dx, 1
    int 0x10
    push es
    mov ax, 0xa000
    mov es, ax
    mov byte [es:0x0010], 0x0f
    pop es
    mov ax, 0x4f05
    xor bx, bx
    xor dx, dx
    int 0x10
    mov [0x0900], ax
    push es
    mov ax, 0xa000
    mov es, ax
    mov byte [es:0x0000], 0x09
    pop es
.hang:
    hlt
    jmp .hang
msg: db "VGABIOS OK", 0
