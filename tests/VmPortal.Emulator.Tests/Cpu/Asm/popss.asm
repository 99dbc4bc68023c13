; POP SS whose new SS descriptor has another stack size (B bit) than the old one: the stack pointer is
; incremented with the size of the stack the selector was popped from (the old SS), not the new one.
;  - 32-bit operand, old SS 16-bit (SP=FFFCh, ESP upper half 0002h), new SS 32-bit: SP wraps to 0000h and the
;    upper half of ESP is unchanged (ESP=00020000h), not ESP+4 (00030000h).
;  - 32-bit operand, old SS 32-bit (ESP=0001FFFCh), new SS 16-bit: ESP+4 = 00020000h, not SP wrapping (00010000h).
;  - 16-bit operand, old SS 16-bit (SP=FFFEh), new SS 32-bit: SP wraps to 0000h (ESP=00050000h).
%include "rom.inc"

real_main:
    ENTER_PM32 main32
bits 32
main32:
    ; selectors on the stack: data16 (20h: base 0, 64 KiB, B=0) and data32 flat (10h, B=1)
    mov dword [0x0000FFFC], 0x00000010
    mov dword [0x0001FFFC], 0x00000020
    mov word [0x0000FFFE], 0x0010

    ; old 16-bit, new 32-bit, 32-bit operand
    mov ax, 0x20
    mov ss, ax
    mov esp, 0x0002FFFC
    pop ss                              ; 32-bit operand (32-bit code)
    mov ebx, esp
    mov cx, ss
    mov ax, 0x10
    mov ss, ax
    mov esp, 0x90000
    PUT 'b16_to_b32_esp', ebx           ;! b16_to_b32_esp=00020000
    movzx ecx, cx
    PUT 'b16_to_b32_ss', ecx            ;! b16_to_b32_ss=00000010

    ; old 32-bit, new 16-bit, 32-bit operand
    mov esp, 0x0001FFFC
    pop ss
    mov ebx, esp
    mov cx, ss
    mov ax, 0x10
    mov ss, ax
    mov esp, 0x90000
    PUT 'b32_to_b16_esp', ebx           ;! b32_to_b16_esp=00020000
    movzx ecx, cx
    PUT 'b32_to_b16_ss', ecx            ;! b32_to_b16_ss=00000020

    ; old 16-bit, new 32-bit, 16-bit operand
    mov ax, 0x20
    mov ss, ax
    mov esp, 0x0005FFFE
    o16 pop ss
    mov ebx, esp
    mov cx, ss
    mov ax, 0x10
    mov ss, ax
    mov esp, 0x90000
    PUT 'w16_to_b32_esp', ebx           ;! w16_to_b32_esp=00050000
    movzx ecx, cx
    PUT 'w16_to_b32_ss', ecx            ;! w16_to_b32_ss=00000010
    EXIT32
%include "rom_end.inc"
