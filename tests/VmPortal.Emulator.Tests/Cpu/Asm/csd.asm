; The same bytes as 16-bit and as 32-bit code, entered alternately from one far call: "call far [ptr]" whose pointer
; switches between the 32-bit code segment (08h) and the 16-bit one (18h), both with base F0000h. The code there
; decodes differently with CS.D set and clear: the decoded-block cache, its block links and the JIT tier must key
; their blocks by CS.D as well as by address, or one mode runs the other's decoding.
%include "rom.inc"
%include "probe.inc"
%define PTR 0x20000

real_main:
    ENTER_PM32 main32
bits 32

dual:
    db 0xB8, 0x01, 0x00, 0x66, 0xCB     ; 32-bit: mov eax, 0CB660001h / 16-bit: mov ax, 1 ; o32 retf
    db 0xCB                             ; 32-bit: retf

main32:
    mov dword [PTR], dual
    xor esi, esi
    mov ecx, 100
.loop:
    mov eax, ecx
    and eax, 1
    shl eax, 4
    add eax, 0x08                       ; even ECX: 08h (32-bit), odd: 18h (16-bit)
    mov [PTR + 4], eax
    xor eax, eax
    call far [PTR]
    add esi, eax
    dec ecx
    jnz .loop
    PUT 'sum', esi                      ;! sum=B9EC0064
    EXIT32
%include "rom_end.inc"
