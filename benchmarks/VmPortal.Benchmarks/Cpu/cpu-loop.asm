; CPU benchmark guest: a 32-bit flat protected-mode loop of ALU operations, loads/stores, branches and calls.
; Built as a 64 KiB ROM (reset vector at F000:FFF0) with nasm -DITER=n; 16 instructions per iteration.
; Ends by writing port F4h (QEMU isa-debug-exit), then CLI/HLT.
bits 16
org 0
start16:
    cli
    xor ax, ax
    mov ds, ax
    o32 lgdt [cs:gdt_desc]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:start32
bits 32
start32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x90000
    mov ecx, ITER
    mov esi, 0x100000
    mov edi, 0x110000
    xor ebx, ebx
    xor edx, edx
.loop:
    mov eax, [esi]          ; 1 load
    add eax, ebx            ; 2
    xor edx, eax            ; 3
    mov [edi], edx          ; 4 store
    add esi, 4              ; 5
    and esi, 0x10FFFC       ; 6
    lea edi, [edi + 4]      ; 7
    and edi, 0x11FFFC       ; 8
    call func               ; 9
    cmp edx, ebx            ; 10
    jne .skip               ; 11
    inc ebx
.skip:
    dec ecx                 ; 12 (+1 when taken above: rare)
    jnz .loop               ; 13
    mov al, 0
    out 0xF4, al
    cli
    hlt
func:
    add ebx, 3              ; 14
    shl edx, 1              ; 15
    ret                     ; 16
align 8
gdt:
    dq 0
    dw 0xFFFF, 0x0000, 0x9A0F, 0x00CF        ; code32, base F0000
    dw 0xFFFF, 0x0000, 0x9200, 0x00CF        ; data32 flat
gdt_desc:
    dw 23
    dd 0xF0000 + gdt
bits 16
    times 0xFFF0 - ($ - $$) db 0xF4
    jmp 0xF000:start16
    times 0x10000 - ($ - $$) db 0xF4
