; Return from protected mode to real mode through a 16-bit code segment, then read data through a CS override
; (GRUB 2 does this through a conforming readable code segment, type 9Eh; SeaBIOS's timer handler then reads
; "mov eax, cs:[x]"). In real mode the cached attributes of CS are not checked as access rights: the conforming
; bit (4) must not act as a data segment's expand-down bit, so every offset within the 64 KiB limit is readable,
; also after a real-mode far jump and an INT that reload CS. The same round trip through a non-conforming 9Ah
; segment for comparison. A real-mode #GP (vector 13 in the IVT) would count in GP_COUNT and skip the read.
%include "rom.inc"
%define GP_COUNT 0x0610
%define GP_SKIP 0x0612
%define OUT 0x0620

real_main:
    mov word [13*4], gp_real
    mov word [13*4 + 2], 0xF000
    mov word [0x60*4], int60
    mov word [0x60*4 + 2], 0xF000
    ENTER_PM32 main32

; real-mode #GP: count it and skip the faulting instruction (its length is in GP_SKIP)
gp_real:
    push bp
    mov bp, sp
    push ax
    inc word [ss:GP_COUNT]
    mov ax, [ss:GP_SKIP]
    add [bp + 2], ax
    pop ax
    pop bp
    iret

; INT 60h: reads through CS inside an interrupt handler (CS reloaded by the real-mode IVT dispatch)
int60:
    mov word [ss:GP_SKIP], 5
    mov eax, [cs:magic]                 ; 2E 66 A1 disp16: 5 bytes
    iret

magic: dd 0xC0DEF00D
real_idt: dw 0x3FF
    dd 0

; REAL_TESTS slot: the reads in real mode, results at OUT + slot*16
%macro REAL_TESTS 1
    mov ax, 0xF000
    mov ds, ax
    lidt [real_idt]                     ; the real-mode vector table at 0 (IDTR still holds the protected-mode IDT)
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [GP_COUNT], 0
    mov word [GP_COUNT + 2], 0
    mov word [GP_SKIP], 5
    mov eax, 0xEEEEEEEE
    mov eax, [cs:magic]                 ; 5 bytes
    mov [OUT + %1*16], eax
    mov word [GP_SKIP], 4
    mov ax, 0xEEEE
    mov ax, [cs:0xFFFE]                 ; 2E A1 FE FF: the last word below the 64 KiB limit (padding F4h)
    mov [OUT + %1*16 + 4], ax
    jmp 0xF000:%%far                    ; a real-mode far jump reloads CS (base, selector)
%%far:
    mov eax, 0xEEEEEEEE
    int 0x60
    mov [OUT + %1*16 + 8], eax
    mov ax, [GP_COUNT]
    mov [OUT + %1*16 + 12], ax
%endmacro

; BACK_TO_PM label: protected mode again without reading through CS (LGDT through DS)
%macro BACK_TO_PM 1
    mov ax, 0xF000
    mov ds, ax
    o32 lgdt [gdt_desc]
    o32 lidt [idt_desc]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:%1
%endmacro

bits 32
main32:
    ; 48h: 16-bit code, base F0000h, limit FFFFh, type 9Eh (present, DPL 0, code, conforming, readable)
    mov dword [GDT_BASE + 0x48], 0x0000FFFF
    mov dword [GDT_BASE + 0x4C], 0x00009E0F
    mov ax, 0x20
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    jmp 0x48:pm16_conforming
bits 16
pm16_conforming:
    mov eax, cr0
    and al, 0xFE
    mov cr0, eax
    jmp 0xF000:rm_conforming
rm_conforming:
    REAL_TESTS 0
    BACK_TO_PM pm32_again
bits 32
pm32_again:
    mov ax, 0x20
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    jmp 0x18:pm16_plain                 ; 18h: 16-bit code, type 9Ah
bits 16
pm16_plain:
    mov eax, cr0
    and al, 0xFE
    mov cr0, eax
    jmp 0xF000:rm_plain
rm_plain:
    REAL_TESTS 1
    BACK_TO_PM final32
bits 32
final32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x90000
    PUT 'conf_cs_read', [OUT + 0]           ;! conf_cs_read=C0DEF00D
    movzx eax, word [OUT + 4]
    PUT 'conf_cs_top', eax                  ;! conf_cs_top=0000F4F4
    PUT 'conf_int_read', [OUT + 8]          ;! conf_int_read=C0DEF00D
    movzx eax, word [OUT + 12]
    PUT 'conf_gp', eax                      ;! conf_gp=00000000
    PUT 'plain_cs_read', [OUT + 16]         ;! plain_cs_read=C0DEF00D
    movzx eax, word [OUT + 20]
    PUT 'plain_cs_top', eax                 ;! plain_cs_top=0000F4F4
    PUT 'plain_int_read', [OUT + 24]        ;! plain_int_read=C0DEF00D
    movzx eax, word [OUT + 28]
    PUT 'plain_gp', eax                     ;! plain_gp=00000000
    EXIT32
%include "rom_end.inc"
