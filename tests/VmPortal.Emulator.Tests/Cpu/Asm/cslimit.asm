; Code-segment limit inside a page: each piece of code first runs through the 4 GiB code segment (so the
; decoded-block cache holds it), then through a code segment with the same base whose byte-granular limit ends
; inside that code: the instruction that starts beyond the limit, the one that straddles it, and a jump to a
; target beyond it raise #GP(0) with CS:EIP on that instruction, and nothing of it is executed.
; QEMU 7.2 TCG checks none of these (it runs the code): the fault results are '~' lines.
%include "rom.inc"
%include "probe.inc"
%define LIM_CS 0x48

real_main:
    ENTER_PM32 main32
bits 32

; #GP: records error code, pushed EIP and CS, then resumes at the continuation in [RESULTS + 24] in CS 08h.
gp_handler:
    pop dword [RESULTS + 4]
    mov dword [RESULTS], 13
    push eax
    mov eax, [esp + 4]
    mov [RESULTS + 16], eax
    mov eax, [esp + 8]
    mov [RESULTS + 20], eax
    mov eax, [RESULTS + 24]
    mov [esp + 4], eax
    mov dword [esp + 8], 0x08
    pop eax
    iretd

; LIMIT value: GDT entry 48h = 32-bit code, base F0000h, byte-granular limit
%macro LIMIT 1
    mov dword [GDT_BASE + LIM_CS], %1     ; offsets in the ROM are below 10000h: limit 15:0
    mov dword [GDT_BASE + LIM_CS + 4], 0x00409A0F
%endmacro

%macro RESET_RESULTS 1
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 4], 0xEEEEEEEE
    mov dword [RESULTS + 16], 0xEEEEEEEE
    mov dword [RESULTS + 20], 0xEEEEEEEE
    mov dword [RESULTS + 24], %1
%endmacro

edge_a:
    mov eax, 1                      ; 5 bytes, inside the limit
    inc eax                         ; starts at limit + 1
    retf
edge_b:
    mov ebx, 0x12345678             ; bytes 0-2 inside, 3-4 beyond
    retf
edge_c:
    jmp short .beyond               ; the target lies beyond the limit
    times 12 nop
.beyond:
    mov ecx, 0x5555
    retf

main32:
    SET_GATE 13, gp_handler, 0x8E, 0x08
    ; warm-up through CS 08h (4 GiB): the code is decoded and cached
    call dword 0x08:edge_a
    PUT 'warm_a', eax                       ;! warm_a=00000002
    call dword 0x08:edge_b
    PUT 'warm_b', ebx                       ;! warm_b=12345678
    call dword 0x08:edge_c
    PUT 'warm_c', ecx                       ;! warm_c=00005555

    ; A: the next instruction starts beyond the limit
    LIMIT edge_a + 4
    RESET_RESULTS .cont_a
    xor eax, eax
    call dword LIM_CS:edge_a
.cont_a:
    add esp, 8                              ; the far call's return address
    PUT '~a_eax', eax                        ;! ~a_eax=00000001
    PUT '~a_vector', [RESULTS]               ;! ~a_vector=0000000D
    PUT '~a_error', [RESULTS + 4]            ;! ~a_error=00000000
    mov eax, [RESULTS + 16]
    sub eax, edge_a
    PUT '~a_eip', eax                        ;! ~a_eip=00000005
    PUT '~a_cs', [RESULTS + 20]              ;! ~a_cs=00000048

    ; B: an instruction straddling the limit does not execute
    LIMIT edge_b + 2
    RESET_RESULTS .cont_b
    xor ebx, ebx
    call dword LIM_CS:edge_b
.cont_b:
    add esp, 8
    PUT '~b_vector', [RESULTS]               ;! ~b_vector=0000000D
    PUT '~b_error', [RESULTS + 4]            ;! ~b_error=00000000
    mov eax, [RESULTS + 16]
    sub eax, edge_b
    PUT '~b_eip', eax                        ;! ~b_eip=00000000
    PUT '~b_ebx', ebx                        ;! ~b_ebx=00000000

    ; C: a jump to a target beyond the limit faults on the jump
    LIMIT edge_c + 8
    RESET_RESULTS .cont_c
    xor ecx, ecx
    call dword LIM_CS:edge_c
.cont_c:
    add esp, 8
    PUT '~c_vector', [RESULTS]               ;! ~c_vector=0000000D
    PUT '~c_error', [RESULTS + 4]            ;! ~c_error=00000000
    mov eax, [RESULTS + 16]
    sub eax, edge_c
    PUT '~c_eip', eax                        ;! ~c_eip=00000000
    PUT '~c_ecx', ecx                        ;! ~c_ecx=00000000

    ; the limit exactly at the end of the code: it runs
    LIMIT edge_a + 6
    RESET_RESULTS .cont_d
    call dword LIM_CS:edge_a
.cont_d:
    PUT 'd_eax', eax                        ;! d_eax=00000002
    PUT 'd_vector', [RESULTS]               ;! d_vector=EEEEEEEE
    EXIT32
%include "rom_end.inc"
