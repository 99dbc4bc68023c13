; Virtual-8086 mode: entered with IRET (EFLAGS.VM=1); real-mode style segment loads; with IOPL=0 a CLI traps
; to the ring-0 #GP handler (error 0, VM=1 in the pushed EFLAGS, V86 segments pushed); with IOPL=3 an INT n
; goes through a DPL-3 gate to ring 0 with GS/FS/DS/ES pushed and the data segments nulled.
%include "rom.inc"
%include "probe.inc"

real_main:
    ENTER_PM32 main32
bits 32
main32:
    SETUP_TSS 0x38, TSS0
    mov dword [TSS0 + 8], 0x10
    mov word [TSS0 + 0x66], 0x68
    mov ax, 0x38
    ltr ax
    SET_GATE 13, gp_handler, 0x8E, 0x08
    SET_GATE 0x30, int30_handler, 0xEE, 0x08
    mov [0x20800], esp
    mov [TSS0 + 4], esp
    ; phase 1: IOPL 0
    push dword 0x2000               ; GS
    push dword 0x2000               ; FS
    push dword 0x2000               ; DS
    push dword 0x2000               ; ES
    push dword 0x6000               ; SS
    push dword 0xFF00               ; ESP
    push dword 0x00020002           ; EFLAGS: VM=1, IOPL=0, IF=0
    push dword 0xF000               ; CS
    push dword v86_code1
    iretd

gp_handler:
    mov ax, 0x10                    ; DS was nulled on the way out of V86 mode
    mov ds, ax
    pop dword [0x20810]             ; error code
    mov eax, [esp + 8]              ; EFLAGS
    and eax, 0x20000
    mov [0x20814], eax
    mov eax, [esp + 4]              ; CS
    mov [0x20818], eax
    mov eax, [esp + 20]             ; pushed ES
    mov [0x2081C], eax
    mov eax, [esp + 24]             ; pushed DS
    mov [0x20824], eax
    mov eax, [0x23456]              ; written by V86 code through DS=2345h
    mov [0x20820], eax
    ; phase 2: IOPL 3
    mov esp, [0x20800]
    push dword 0
    push dword 0
    push dword 0
    push dword 0
    push dword 0x6000
    push dword 0xFF00
    push dword 0x00023002           ; VM=1, IOPL=3
    push dword 0xF000
    push dword v86_code2
    iretd

int30_handler:
    mov bx, ds
    movzx ebx, bx
    mov ax, 0x10
    mov ds, ax
    mov [0x20838], ebx              ; DS inside the handler (nulled)
    mov eax, [esp + 8]
    and eax, 0x20000
    mov [0x20830], eax              ; VM in pushed EFLAGS
    mov eax, [esp + 24]             ; pushed DS
    mov [0x20834], eax
    mov esp, [0x20800]
    mov ax, 0x10
    mov es, ax
    mov fs, ax
    mov gs, ax
    PUT 'gp_err', [0x20810]         ;! gp_err=00000000
    PUT 'gp_vm', [0x20814]          ;! gp_vm=00020000
    PUT 'gp_cs', [0x20818]          ;! gp_cs=0000F000
    PUT 'gp_es', [0x2081C]          ;! gp_es=00002000
    PUT 'gp_ds', [0x20824]          ;! gp_ds=00002345
    PUT 'v86_write', [0x20820]      ;! v86_write=0000BEEF
    PUT 'int_vm', [0x20830]         ;! int_vm=00020000
    PUT 'int_ds', [0x20834]         ;! int_ds=00003000
    PUT 'int_ds_null', [0x20838]    ;! int_ds_null=00000000
    EXIT32

bits 16
v86_code1:
    mov ax, 0x2345
    mov ds, ax
    mov word [0x0006], 0xBEEF       ; linear 23456h
    cli                             ; IOPL 0 -> #GP(0)
    jmp $
v86_code2:
    mov ax, 0x3000
    mov ds, ax
    int 0x30
    jmp $
%include "rom_end.inc"
