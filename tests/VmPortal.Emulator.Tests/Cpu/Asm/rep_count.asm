; Retired-instruction accounting of REP string instructions: every iteration counts as one instruction (guest time
; is paced per retired instruction), whether it runs element by element or as a bulk page copy/fill, across the
; 4096-iteration chunks, for REPE stopping early, and ECX=0 counts as one. Without a guest clock our TSC counts
; retired instructions, so "RDTSC; MOV; REP ...; RDTSC" measures n + 2. QEMU's TSC is host time: '~' lines; the
; string results themselves are compared.
%include "rom.inc"

real_main:
    ENTER_PM32 main32
bits 32

; MEASURE name, instruction : prints the TSC delta over "mov ebx, eax ; instruction ; rdtsc"
%macro MEASURE 2+
    rdtsc
    mov ebx, eax
    %2
    rdtsc
    sub eax, ebx
    PUT %1, eax
%endmacro

; MEASURE_STOS name, value, instruction : the same with "mov eax, value" before the STOS (n + 3)
%macro MEASURE_STOS 3+
    rdtsc
    mov ebx, eax
    mov eax, %2
    %3
    rdtsc
    sub eax, ebx
    PUT %1, eax
%endmacro

main32:
    cld
    ; source data
    mov edi, 0x40000
    mov ecx, 1024
    mov eax, 0x01020304
.fill:
    stosd
    add eax, 0x04040404
    loop .fill

    mov esi, 0x40000
    mov edi, 0x50000
    mov ecx, 1024
    MEASURE '~movsd_1024', {rep movsd}          ;! ~movsd_1024=00000402
    PUT 'movsd_last', [0x50FFC]                 ;! movsd_last=0D0E0F00
    PUT 'movsd_ecx', ecx                        ;! movsd_ecx=00000000

    mov edi, 0x60000
    mov ecx, 4096
    MEASURE_STOS '~stosb_4096', 0x5A, {rep stosb}   ;! ~stosb_4096=00001003
    PUT 'stosb_last', [0x60FFC]                 ;! stosb_last=5A5A5A5A
    PUT 'stosb_edi', edi                        ;! stosb_edi=00061000

    mov edi, 0x60000
    mov ecx, 10000
    MEASURE_STOS '~stosd_10000_chunked', 0x77777777, {rep stosd}   ;! ~stosd_10000_chunked=00002713
    PUT 'stosd_edi', edi                        ;! stosd_edi=00069C40
    PUT 'stosd_last', [0x69C3C]                 ;! stosd_last=77777777

    xor ecx, ecx
    MEASURE '~movsb_ecx0', {rep movsb}          ;! ~movsb_ecx0=00000003

    ; REPE CMPSB: the 10th byte differs
    mov byte [0x70009], 0xFF
    mov byte [0x71009], 0x00
    mov esi, 0x70000
    mov edi, 0x71000
    mov ecx, 100
    MEASURE '~repe_cmpsb_10', {repe cmpsb}      ;! ~repe_cmpsb_10=0000000C
    PUT 'repe_ecx', ecx                         ;! repe_ecx=0000005A

    ; 16-bit addresses (element by element)
    mov esi, 0x8000
    mov edi, 0x9000
    mov ax, 0x20
    mov ds, ax
    mov es, ax
    mov ecx, 100
    MEASURE '~a16_movsw_100', {a16 rep movsw}   ;! ~a16_movsw_100=00000066
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    PUT 'a16_si', esi                           ;! a16_si=000080C8
    EXIT32
%include "rom_end.inc"
