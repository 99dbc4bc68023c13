; Self-modifying code: an instruction's immediate is rewritten in RAM after it has already run once (the same
; linear address is executed again and must see the new bytes), in real mode and in 32-bit protected mode.
%include "rom.inc"

real_main:
    ; copy the patchable routine to RAM at 0:6000 and call it twice, patching its immediate in between
    mov si, patch16
    mov di, 0x6000
    mov cx, patch16_end - patch16
.cp:
    mov al, [cs:si]
    mov [es:di], al
    inc si
    inc di
    loop .cp
    call 0x0000:0x6000
    mov [0x0500], ax
    mov word [0x6001], 0x2222       ; the imm16 of "mov ax, imm16"
    call 0x0000:0x6000
    mov [0x0502], ax
    ENTER_PM32 main32
bits 16
patch16:
    mov ax, 0x1111
    retf
patch16_end:
bits 32
main32:
    mov esi, patch32
    add esi, ROM_BASE
    mov edi, 0x30000
    mov ecx, patch32_end - patch32
    rep movsb
    mov ebx, 0x30000 - ROM_BASE     ; CS base is F0000h: call through an offset
    call ebx
    mov [0x20000], eax
    mov dword [0x30001], 0xBBBBBBBB ; patch the imm32 of "mov eax, imm32"
    call ebx
    mov [0x20004], eax
    movzx eax, word [0x0500]
    PUT 'real_first', eax           ;! real_first=00001111
    movzx eax, word [0x0502]
    PUT 'real_patched', eax         ;! real_patched=00002222
    PUT 'pm_first', [0x20000]       ;! pm_first=AAAAAAAA
    PUT 'pm_patched', [0x20004]     ;! pm_patched=BBBBBBBB
    EXIT32
patch32:
    mov eax, 0xAAAAAAAA
    ret
patch32_end:
%include "rom_end.inc"
