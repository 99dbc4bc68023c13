; Floppy boot test: loaded by SeaBIOS at 0000:7C00. Reads sectors 2..19 (crossing to head 1) with INT 13h,
; checks their marker bytes, then prints the result on COM1 and the debug port 0xE9.
bits 16
org 0x7C00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov [drive], dl
    mov si, hello
    call print
    ; read 18 sectors starting at C0 H0 S2 -> ends on C0 H1 S1 (SeaBIOS splits at track end)
    mov ax, 0x1000
    mov es, ax
    xor bx, bx
    mov ah, 0x02
    mov al, 17          ; sectors 2..18 of head 0
    mov ch, 0
    mov cl, 2
    mov dh, 0
    mov dl, [drive]
    int 0x13
    jc fail
    ; head 1 sector 1 -> LBA 18
    mov ax, 0x1000 + (17*512/16)
    mov es, ax
    xor bx, bx
    mov ax, 0x0201
    mov cx, 0x0001
    mov dh, 1
    mov dl, [drive]
    int 0x13
    jc fail
    ; verify: sector with LBA n starts with byte n (n = 1..18)
    mov ax, 0x1000
    mov es, ax
    xor di, di
    mov cl, 1
.check:
    cmp byte [es:di], cl
    jne fail
    add di, 512
    inc cl
    cmp cl, 19
    jne .check
    mov si, okmsg
    call print
    jmp halt
fail:
    mov si, failmsg
    call print
halt:
    cli
    hlt
    jmp halt

print:
    lodsb
    or al, al
    jz .done
    mov dx, 0x3F8
    out dx, al
    out 0xE9, al
    jmp print
.done:
    ret

drive: db 0
hello: db "FDBOOT: started", 13, 10, 0
okmsg: db "FDBOOT: READ-OK", 13, 10, 0
failmsg: db "FDBOOT: READ-FAIL", 13, 10, 0
times 510-($-$$) db 0
dw 0xAA55
