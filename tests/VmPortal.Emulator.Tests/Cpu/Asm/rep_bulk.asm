; REP MOVS/STOS with 32-bit addresses: copies and fills that cross pages at odd offsets (the CPU does whole pages
; at once when it can), an overlapping forward MOVSB (must replicate, element by element), a segment-limit #GP in
; the middle (ECX/EDI must show the elements done) and a REP MOVSB over code that has run (the new code must run).
%include "rom.inc"
%include "probe.inc"

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 13, 1

main32:
    SET_GATE 13, fault_13, 0x8E, 0x08
    cld
    ; clear 40000h-6FFFFh
    mov edi, 0x40000
    mov ecx, 0x30000 / 4
    xor eax, eax
    rep stosd
    PUT 'clear_edi', edi            ;! clear_edi=00070000
    ; a pattern in 3 pages from 40800h
    mov edi, 0x40800
    mov ecx, 3 * 1024
    mov eax, 0x01020304
.pat:
    mov [edi], eax
    add edi, 4
    add eax, 0x11111111
    dec ecx
    jnz .pat
    ; 1. copy it to a different page offset
    mov esi, 0x40800
    mov edi, 0x50404
    mov ecx, 3 * 1024 - 1
    rep movsd
    PUT 'movsd_ecx', ecx            ;! movsd_ecx=00000000
    PUT 'movsd_esi', esi            ;! movsd_esi=000437FC
    PUT 'movsd_edi', edi            ;! movsd_edi=00053400
    mov esi, 0x40800
    mov edi, 0x50404
    mov ecx, 3 * 1024 - 1
    repe cmpsd
    PUT 'movsd_cmp_ecx', ecx        ;! movsd_cmp_ecx=00000000
    PUT 'movsd_last', [0x533FC]     ;! movsd_last=ABACACE2
    PUT 'movsd_after', [0x53400]    ;! movsd_after=00000000
    ; 2. byte fill across a page boundary at an odd address
    mov edi, 0x60FFD
    mov ecx, 0x1003
    mov al, 0xA5
    rep stosb
    PUT 'stosb_head', [0x60FFC]     ;! stosb_head=A5A5A500
    PUT 'stosb_tail', [0x61FFE]     ;! stosb_tail=0000A5A5
    PUT 'stosb_edi', edi            ;! stosb_edi=00062000
    ; 3. word fill
    mov edi, 0x64002
    mov ecx, 0x801
    mov ax, 0x1234
    rep stosw
    PUT 'stosw_tail', [0x65002]     ;! stosw_tail=00001234
    PUT 'stosw_head', [0x64000]     ;! stosw_head=12340000
    ; 4. overlapping forward copy replicates the first byte
    mov byte [0x66000], 0x5A
    mov esi, 0x66000
    mov edi, 0x66001
    mov ecx, 0x20
    rep movsb
    PUT 'overlap_tail', [0x6601F]   ;! overlap_tail=00005A5A
    PUT 'overlap_mid', [0x66010]    ;! overlap_mid=5A5A5A5A
    ; 5. ES limit 64 KiB: the 41st dword of the fill is beyond it (names with ~: QEMU TCG does not check data segment limits)
    mov ax, 0x20
    mov es, ax
    mov edi, 0xFF00
    mov ecx, 0x100
    mov eax, 0x77777777
    PROBE '~stos_limit', 2, rep stosd ;! ~stos_limit=0000000D
                                     ;! ~stos_limit_err=00000000
    PUT '~stos_limit_ecx', ecx       ;! ~stos_limit_ecx=000000C0
    PUT '~stos_limit_edi', edi       ;! ~stos_limit_edi=00010000
    PUT '~stos_limit_last', [0xFFFC] ;! ~stos_limit_last=77777777
    mov ax, 0x10
    mov es, ax
    ; 6. code that has run is overwritten by REP MOVSB and called again
    mov esi, code1 + ROM_BASE
    mov edi, 0x30000
    mov ecx, code_len
    rep movsb
    mov ebx, 0x30000 - ROM_BASE
    call ebx
    PUT 'code_first', eax           ;! code_first=11111111
    mov esi, code2 + ROM_BASE
    mov edi, 0x30000
    mov ecx, code_len
    rep movsb
    call ebx
    PUT 'code_second', eax          ;! code_second=22222222
    EXIT32
code1:
    mov eax, 0x11111111
    ret
code2:
    mov eax, 0x22222222
    ret
code_len equ code2 - code1
%include "rom_end.inc"
