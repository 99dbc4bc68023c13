; ENTER at CPL 3 whose pushes land on a user page but whose final ESP lies on a supervisor page: #PF with error
; code 7 (present, write, user) and CR2 = the final ESP, raised before EBP/ESP change (the pushed ESP and EBP
; seen by the handler are the values before ENTER). The same ENTER with a smaller frame completes.
; QEMU 7.2 TCG completes the faulting ENTER (its results are '~' lines).
%include "rom.inc"
%include "probe.inc"
%define PD 0x10000
%define PT 0x11000
%define SAVED_ESP0 0x20400
%define R 0x20500

real_main:
    ENTER_PM32 main32
bits 32

; #PF from ring 3: records the error code, CR2, the interrupted ESP and EBP, then ends the ring-3 part
pf_handler:
    pop dword [R + 0]               ; error code
    mov eax, cr2
    mov [R + 4], eax
    mov eax, [esp + 12]             ; ESP of ring 3
    mov [R + 8], eax
    mov [R + 12], ebp
    mov dword [R + 16], 14
    jmp ring0_again

syscall:
    jmp ring0_again

main32:
    SET_GATE 14, pf_handler, 0x8E, 0x08
    SET_GATE 0x80, syscall, 0xEE, 0x08
    SETUP_TSS 0x38, TSS0
    mov dword [TSS0 + 8], 0x10
    mov ax, 0x38
    ltr ax
    ; identity map 0-4 MiB, user + writable; page 70000h supervisor only
    IDENTITY_PT PD, PT, 0x007
    mov dword [PT + 0x70*4], 0x00070003
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    mov dword [R + 16], 0xEEEEEEEE
    mov dword [R + 20], 0xEEEEEEEE

    ; ring 3, ESP = 71010h
    mov [SAVED_ESP0], esp
    mov [TSS0 + 4], esp
    push dword 0x33
    push dword 0x71010
    push dword 0x202
    push dword 0x2B
    push dword ring3
    iretd
ring3:
    mov ax, 0x33
    mov ds, ax
    mov es, ax
    mov ebp, 0x12345678
    enter 8, 0                       ; EBP pushed at 7100Ch, final ESP 71004h: fine
    mov [R + 24], esp
    mov [R + 28], ebp
    mov esp, 0x71010
    mov ebp, 0x12345678
    enter 0x20, 0                   ; EBP pushed at 7100Ch (user page), final ESP 70FECh (supervisor page)
    mov dword [R + 20], 0x600D      ; not reached
    int 0x80
ring0_again:
    mov esp, [SAVED_ESP0]
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    PUT 'small_esp', [R + 24]       ;! small_esp=00071004
    PUT 'small_ebp', [R + 28]       ;! small_ebp=0007100C
    PUT '~pf_vector', [R + 16]      ;! ~pf_vector=0000000E
    PUT '~pf_error', [R + 0]        ;! ~pf_error=00000007
    PUT '~pf_cr2', [R + 4]          ;! ~pf_cr2=00070FEC
    PUT '~pf_esp', [R + 8]          ;! ~pf_esp=00071010
    PUT '~pf_ebp', [R + 12]         ;! ~pf_ebp=12345678
    PUT '~after', [R + 20]          ;! ~after=EEEEEEEE
    EXIT32
%include "rom_end.inc"
