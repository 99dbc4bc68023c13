; The same code run with flat and with other data segments. Compiled code may assume a segment flat (base 0, 4 GiB,
; readable and writable) and skip its limit check and base add; it must notice every other kind of segment:
;  - a subroutine first run with the flat DS, then with a DS based at 10000h (its loads and stores move by the base),
;    then with that DS and an offset past its limit (#GP(0), nothing written), then with a flat read-only DS (the
;    loads work, the store raises #GP(0));
;  - a loop that loads DS halfway through (the loads after it use the new base);
;  - with the flat DS, a dword at offset FFFFFFFEh runs past the 4 GiB limit: #GP(0);
;  - a near jump first run with the 4 GiB CS (compiled code leaves out the target's limit check), then with a CS
;    whose limit ends with the jump's page, so the target (in the next page) lies beyond it: #GP(0) at the jump.
; QEMU 7.2 TCG checks neither the limits nor the rights of data segments (it reads and writes), nor CS's limit at a
; jump: the fault results are '~' lines.
%include "rom.inc"
%include "probe.inc"
%define SEG_X 0x48

real_main:
    ENTER_PM32 main32
bits 32

; #GP: like probe.inc's handlers (vector and error code to RESULTS, the faulting instruction skipped by the length
; at RESULTS+8), but through the flat DS whatever DS the fault came from.
gp_handler:
    push ds
    push eax
    mov ax, 0x10
    mov ds, ax
    mov eax, [esp + 8]
    mov [RESULTS + 4], eax
    mov eax, [esp + 12]
    mov [RESULTS + 16], eax
    mov dword [RESULTS], 13
    mov eax, [RESULTS + 8]
    add [esp + 12], eax
    pop eax
    pop ds
    add esp, 4
    iretd

; eax = [ebx] + [ebx+4] (3-byte add), through the stack into edx, stored at [ebx+8] (3-byte mov)
sum:
    mov eax, [ebx]
    add eax, [ebx + 4]
    push eax
    pop edx
    mov [ebx + 8], edx
    ret

; SEG_X: base 10000h, byte-granular limit 2FFFFh, 32-bit read/write data
%macro SEG_X_BASED 0
    mov dword [GDT_BASE + SEG_X], 0x0000FFFF
    mov dword [GDT_BASE + SEG_X + 4], 0x00429201
%endmacro

; SUM_WITH_DS selector, offset: sum (entered from the block loop) with DS = selector and EBX = offset, then DS
; back to the flat 10h (through CX: EAX and EDX keep sum's results)
%macro SUM_WITH_DS 2
    mov ax, %1
    mov ds, ax
    mov ebx, %2
    call edi
    mov cx, 0x10
    mov ds, cx
%endmacro

main32:
    SET_GATE 13, gp_handler, 0x8E, 0x08
    mov edi, sum
    mov dword [0x20100], 0x11
    mov dword [0x20104], 0x22
    mov dword [0x30100], 0x1000
    mov dword [0x30104], 0x2000
    mov dword [0x3FFFC], 0x77

    ; the flat DS
    SUM_WITH_DS 0x10, 0x20100
    PUT 'flat_sum', [0x20108]                   ;! flat_sum=00000033

    ; DS based at 10000h: the same offsets reach 30100h
    SEG_X_BASED
    SUM_WITH_DS SEG_X, 0x20100
    PUT 'based_sum', [0x30108]                  ;! based_sum=00003000
    PUT 'based_edx', edx                        ;! based_edx=00003000

    ; past the limit: [ebx] is the last dword inside it, [ebx+4] and [ebx+8] lie beyond
    mov dword [0x40004], 0x5A5A5A5A
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 4], 0xEEEEEEEE
    mov dword [RESULTS + 8], 3                  ; both faulting instructions are 3 bytes long
    SUM_WITH_DS SEG_X, 0x2FFFC
    PUT '~limit_vector', [RESULTS]              ;! ~limit_vector=0000000D
    PUT '~limit_err', [RESULTS + 4]             ;! ~limit_err=00000000
    PUT 'limit_eax', eax                        ;! limit_eax=00000077
    PUT '~limit_mem', [0x40004]                 ;! ~limit_mem=5A5A5A5A

    ; a flat read-only DS: the loads work, the store faults
    mov dword [GDT_BASE + SEG_X], 0x0000FFFF
    mov dword [GDT_BASE + SEG_X + 4], 0x00CF9000
    mov dword [0x20108], 0x99
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 8], 3
    SUM_WITH_DS SEG_X, 0x20100
    PUT '~ro_vector', [RESULTS]                 ;! ~ro_vector=0000000D
    PUT 'ro_edx', edx                           ;! ro_edx=00000033
    PUT '~ro_mem', [0x20108]                    ;! ~ro_mem=00000099

    ; a loop that loads DS halfway: two loads at 20100h, then two at 30100h
    SEG_X_BASED
    mov ebx, 0x20100
    mov ecx, 4
    xor esi, esi
    mov dx, SEG_X
.loop:
    add esi, [ebx]
    dec ecx
    jz .done
    cmp ecx, 2
    jne .loop
    mov ds, dx
    jmp .loop
.done:
    mov ax, 0x10
    mov ds, ax
    PUT 'loop_sum', esi                         ;! loop_sum=00002022

    ; the flat DS at the top of 4 GiB
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 8], 5
    mov eax, 0x12345678
    mov eax, [0xFFFFFFFE]                       ; A1 imm32: 5 bytes
    PUT '~wrap_read_vector', [RESULTS]          ;! ~wrap_read_vector=0000000D
    PUT '~wrap_read_eax', eax                   ;! ~wrap_read_eax=12345678
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 8], 3
    mov ebx, 0xFFFFFFFD
    mov dword [0x0], 0x31415926
    mov [ebx + 0x1], eax                        ; 89 43 01: 3 bytes, offset FFFFFFFEh, 4 bytes: past the limit
    PUT '~wrap_write_vector', [RESULTS]         ;! ~wrap_write_vector=0000000D
    PUT '~wrap_write_low', [0x0]                ;! ~wrap_write_low=31415926

    ; a jump to the next page: first through the 4 GiB CS 08h, then through SEG_X as a code segment with CS 08h's
    ; base whose byte-granular limit ends with the jump's page
    xor ecx, ecx
    call dword 0x08:jump_page
    PUT 'csl_warm_ecx', ecx                     ;! csl_warm_ecx=00005555
    mov dword [GDT_BASE + SEG_X], jump_page + 0xFFF
    mov dword [GDT_BASE + SEG_X + 4], 0x00409A0F
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 16], 0xEEEEEEEE
    mov dword [RESULTS + 8], 5                  ; the jump is 5 bytes long
    xor ecx, ecx
    call dword SEG_X:jump_page
    PUT '~csl_vector', [RESULTS]                ;! ~csl_vector=0000000D
    mov edx, [RESULTS + 16]
    sub edx, jump_page
    PUT '~csl_eip_past_jump', edx               ;! ~csl_eip_past_jump=00000000
    PUT '~csl_ecx', ecx                         ;! ~csl_ecx=00000000
    EXIT32

align 4096
jump_page:
    jmp dword jump_beyond                       ; E9 rel32
    retf                                        ; after the #GP (its handler skips the jump)
align 4096
jump_beyond:
    mov ecx, 0x5555
    retf
%include "rom_end.inc"
