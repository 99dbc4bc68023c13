; Keyboard and serial test: loaded by SeaBIOS at 0000:7C00. Echoes keys read with INT 16h (character and
; scancode) to port 0xE9 until it sees "q", then polls COM1 for one byte and echoes it.
bits 16
org 0x7C00
start:
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    mov si, hello
    call print
.key:
    mov ah, 0x00
    int 0x16            ; wait for a key (IRQ 1 -> SeaBIOS buffer)
    mov [keych], al
    mov [keysc], ah
    mov si, keymsg
    call print
    mov al, [keych]
    call putc
    mov al, ' '
    call putc
    mov al, [keysc]
    call hex
    mov al, 13
    call putc
    mov al, 10
    call putc
    cmp byte [keych], 'q'
    jne .key
    ; serial echo: poll COM1 for one byte
.ser:
    mov dx, 0x3FD
    in al, dx
    test al, 1
    jz .ser
    mov dx, 0x3F8
    in al, dx
    mov [keych], al
    mov si, sermsg
    call print
    mov al, [keych]
    call putc
    mov al, 10
    call putc
halt:
    hlt
    jmp halt
hex:
    push ax
    shr al, 4
    call nib
    pop ax
    and al, 15
nib:
    add al, '0'
    cmp al, '9'
    jbe putc
    add al, 7
putc:
    out 0xE9, al
    ret
print:
    lodsb
    or al, al
    jz .d
    call putc
    jmp print
.d: ret
keych: db 0
keysc: db 0
hello: db "KBD: ready", 13, 10, 0
keymsg: db "KBD: got ", 0
sermsg: db "SER: got ", 0
times 510-($-$$) db 0
dw 0xAA55
