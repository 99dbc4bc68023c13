; Self-modifying code inside one decoded block: a store rewrites the immediate of the very next instruction (it
; must execute with the new bytes), and a loop rewrites an instruction later in its own body on every pass
; (the decoded-instruction cache must drop the block each time), in real mode and in 32-bit protected mode.
%include "rom.inc"

%define R16 0x6000              ; the 16-bit routine runs at 0000:6000
%define R32 0x31000             ; the 32-bit routine runs at linear 31000h

real_main:
    mov si, rtn16
    mov di, R16
    mov cx, rtn16_end - rtn16
.cp:
    mov al, [cs:si]
    mov [es:di], al
    inc si
    inc di
    loop .cp
    call 0x0000:R16
    mov [0x0500], ax
    ; put the old immediate back and change the value the routine stores: the cached block must be dropped
    mov byte [R16 + (rtn16_target - rtn16) + 1], 0x11
    mov byte [R16 + (rtn16_store - rtn16) + 5], 0x55
    call 0x0000:R16
    mov [0x0502], ax
    ENTER_PM32 main32
bits 16
rtn16:
rtn16_store:
    mov byte [cs:R16 + (rtn16_target - rtn16) + 1], 0x77  ; 2E C6 06 lo hi 77: patches the next instruction
rtn16_target:
    mov ax, 0x0011
    retf
rtn16_end:
bits 32
main32:
    mov esi, rtn32
    add esi, ROM_BASE
    mov edi, R32
    mov ecx, rtn32_end - rtn32
    rep movsb
    mov ebx, R32 - ROM_BASE         ; CS base is F0000h: call through an offset
    call ebx
    mov [0x20000], eax
    mov [0x20004], edx
    call ebx                        ; again: the immediate continues from where the first run left it
    mov [0x20008], eax
    mov [0x2000C], edx
    movzx eax, word [0x0500]
    PUT 'real_next', eax            ;! real_next=00000077
    movzx eax, word [0x0502]
    PUT 'real_again', eax           ;! real_again=00000055
    PUT 'pm_last', [0x20000]        ;! pm_last=00000105
    PUT 'pm_sum', [0x20004]         ;! pm_sum=0000050F
    PUT 'pm_last2', [0x20008]       ;! pm_last2=0000010A
    PUT 'pm_sum2', [0x2000C]        ;! pm_sum2=00000528
    EXIT32
rtn32:
    mov ecx, 5
    xor edx, edx
.lp:
    add dword [R32 + (rtn32.imm - rtn32) + 1], 1   ; the imm32 of the next instruction
.imm:
    mov eax, 0x100
    add edx, eax
    dec ecx
    jnz .lp
    ret
rtn32_end:
%include "rom_end.inc"
