; 32-bit ENTER on a 16-bit stack (SS.B=0): SP wraps at 64 KiB, but the frame pointer (pushed for a nesting
; level > 0 and loaded into EBP) is the whole ESP after pushing EBP, upper half included. ESP=00010000h (SP=0),
; EBP=0003F000h (BP=F000h), ENTER 8, 2: EBP pushed at FFFCh, one frame pointer copied from BP-4 = EFFCh to
; FFF8h, the frame pointer 0001FFFCh pushed at FFF4h, ESP=0001FFECh, EBP=0001FFFCh.
; QEMU 7.2 TCG keeps only SP (the frame-pointer results are '~' lines).
%include "rom.inc"

real_main:
    ENTER_PM32 main32
bits 32
main32:
    mov dword [0xEFFC], 0x11111111
    mov dword [0xFFF4], 0xEEEEEEEE
    mov dword [0xFFF8], 0xEEEEEEEE
    mov dword [0xFFFC], 0xEEEEEEEE
    mov ax, 0x20
    mov ss, ax
    mov esp, 0x00010000
    mov ebp, 0x0003F000
    enter 8, 2
    mov ebx, esp
    mov ecx, ebp
    mov ax, 0x10
    mov ss, ax
    mov esp, 0x90000
    PUT 'esp', ebx                          ;! esp=0001FFEC
    PUT '~ebp', ecx                         ;! ~ebp=0001FFFC
    PUT 'saved_ebp', [0xFFFC]               ;! saved_ebp=0003F000
    PUT 'copied', [0xFFF8]                  ;! copied=11111111
    PUT '~frame', [0xFFF4]                  ;! ~frame=0001FFFC

    ; level 0: EBP = the whole ESP after the push as well
    mov ax, 0x20
    mov ss, ax
    mov esp, 0x00030000
    mov ebp, 0x00001234
    enter 4, 0
    mov ebx, esp
    mov ecx, ebp
    mov ax, 0x10
    mov ss, ax
    mov esp, 0x90000
    PUT 'l0_esp', ebx                       ;! l0_esp=0003FFF8
    PUT '~l0_ebp', ecx                      ;! ~l0_ebp=0003FFFC

    ; 16-bit ENTER on the 16-bit stack: BP = SP, the upper half of EBP unchanged
    mov ax, 0x20
    mov ss, ax
    mov esp, 0x00030000
    mov ebp, 0x00051234
    o16 enter 4, 1
    mov ebx, esp
    mov ecx, ebp
    mov ax, 0x10
    mov ss, ax
    mov esp, 0x90000
    PUT 'w_esp', ebx                        ;! w_esp=0003FFF8
    PUT 'w_ebp', ecx                        ;! w_ebp=0005FFFE
    movzx eax, word [0xFFFC]
    PUT 'w_frame', eax                      ;! w_frame=0000FFFE
    EXIT32
%include "rom_end.inc"
