; x87 through the CPU: memory operands in and out, FNSTSW AX, FCOMI flags into EFLAGS, FIST, FSAVE/FRSTOR,
; #NM with CR0.TS, #MF with CR0.NE at the next waiting instruction after an unmasked zero divide, FXSAVE.
%include "rom.inc"
%include "probe.inc"

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 7, 0
FAULT_HANDLER 16, 0

main32:
    SET_GATE 7, fault_7, 0x8E, 0x08
    SET_GATE 16, fault_16, 0x8E, 0x08
    mov eax, cr0
    or eax, 0x22                    ; MP, NE
    and eax, ~0x0C                  ; EM=0, TS=0
    mov cr0, eax
    fninit
    mov dword [0x20000 + 0x100], 3
    mov dword [0x20000 + 0x104], 4
    fild dword [0x20100]
    fild dword [0x20104]
    fmul st0, st0                   ; 16
    fxch
    fmul st0, st0                   ; 9
    faddp                           ; 25
    fsqrt                           ; 5
    fistp dword [0x20108]
    PUT 'sqrt_int', [0x20108]       ;! sqrt_int=00000005
    ; 1/3 as a double
    fld1
    fild dword [0x20100]
    fdivp
    fstp qword [0x20110]
    PUT 'third_lo', [0x20110]       ;! third_lo=55555555
    PUT 'third_hi', [0x20114]       ;! third_hi=3FD55555
    ; compare: FCOMI sets CF when st0 < st1
    fild dword [0x20104]            ; 4
    fild dword [0x20100]            ; 3  (st0=3, st1=4)
    fcomi st0, st1
    setc al
    movzx eax, al
    PUT 'fcomi_cf', eax             ;! fcomi_cf=00000001
    fcompp
    fnstsw ax
    and eax, 0x4500
    PUT 'fcom_cc', eax              ;! fcom_cc=00000100
    ; FSAVE / FRSTOR round trip keeps the control word
    fnstcw [0x20120]
    mov word [0x20122], 0x0C7F
    fldcw [0x20122]
    fnsave [0x20200]
    fnstcw [0x20124]
    frstor [0x20200]
    fnstcw [0x20126]
    movzx eax, word [0x20124]
    PUT 'cw_after_fsave', eax       ;! cw_after_fsave=0000037F
    movzx eax, word [0x20126]
    PUT 'cw_after_frstor', eax      ;! cw_after_frstor=00000C7F
    ; #NM: CR0.TS set
    mov eax, cr0
    or eax, 8
    mov cr0, eax
    PROBE 'nm', 2, {fld1}
    ;! nm=00000007
    clts
    ; #MF: unmask zero divide, divide by zero, the next waiting FPU instruction faults
    fninit
    mov word [0x20130], 0x037B      ; ZM unmasked
    fldcw [0x20130]
    fld1
    fldz
    fdivp                           ; sets ZE and ES, no fault yet
    fnstsw ax
    and eax, 0x84
    PUT 'zde_sw', eax               ;! zde_sw=00000084
    PROBE 'mf', 1, {fwait}
    ;! mf=00000010
    fnclex
    fninit
    ; FXSAVE: FCW at offset 0
    mov word [0x20140], 0x027F
    fldcw [0x20140]
    mov eax, cr4
    or eax, 0x200
    mov cr4, eax
    fxsave [0x20400]
    movzx eax, word [0x20400]
    PUT 'fxsave_fcw', eax           ;! fxsave_fcw=0000027F
    mov eax, 1
    cpuid
    and edx, 0x01008101             ; FPU, CX8, CMOV, FXSR
    PUT 'cpuid_fpu_cx8_cmov_fxsr', edx   ;! cpuid_fpu_cx8_cmov_fxsr=01008101
    EXIT32
%include "rom_end.inc"
