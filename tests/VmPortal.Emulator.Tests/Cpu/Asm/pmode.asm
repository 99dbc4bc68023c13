; Protected mode: exceptions with error codes through IDT gates, ring 0 -> ring 3 via IRET, system call back
; to ring 0 through a DPL-3 trap gate with the stack switch from the TSS, call gate, privilege checks,
; LAR/LSL/VERR, #NP/#GP/#SS/#UD/#DE/#BR/#BP/#OF, and return to real mode with cached limits ("unreal" mode).
%include "rom.inc"
%define TSS0 0x3000
%define RESULTS 0x20000

real_main:
    ENTER_PM32 main32
bits 32
; Generic fault handler: records vector and error code, skips the faulting instruction by the length stored
; in [skip] (set before each probe).
%macro FAULT_HANDLER 2          ; vector, has_error
fault_%1:
%if %2
    pop dword [RESULTS + 4]     ; error code
%else
    mov dword [RESULTS + 4], 0xFFFFFFFF
%endif
    mov dword [RESULTS], %1
    mov eax, [RESULTS + 8]      ; instruction length to skip
    add [esp], eax
    iretd
%endmacro
FAULT_HANDLER 0, 0
FAULT_HANDLER 3, 0
FAULT_HANDLER 4, 0
FAULT_HANDLER 5, 0
FAULT_HANDLER 6, 0
FAULT_HANDLER 10, 1
FAULT_HANDLER 11, 1
FAULT_HANDLER 12, 1
FAULT_HANDLER 13, 1

; PROBE name, length, instruction... : runs one faulting instruction and prints vector and error code
%macro PROBE 3+
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 8], %2
    %3
    PUT %1, [RESULTS]
    PUT {%1, '_err'}, [RESULTS + 4]
%endmacro

main32:
    SET_GATE 0, fault_0, 0x8E, 0x08
    SET_GATE 3, fault_3, 0x8E, 0x08
    SET_GATE 4, fault_4, 0x8E, 0x08
    SET_GATE 5, fault_5, 0x8E, 0x08
    SET_GATE 6, fault_6, 0x8E, 0x08
    SET_GATE 10, fault_10, 0x8E, 0x08
    SET_GATE 11, fault_11, 0x8E, 0x08
    SET_GATE 12, fault_12, 0x8E, 0x08
    SET_GATE 13, fault_13, 0x8E, 0x08
    SET_GATE 0x80, syscall, 0xEF, 0x08      ; DPL 3 trap gate

    ; a not-present data segment at 48h, a read-only data segment at 50h, expand-down stack at 58h
    mov dword [GDT_BASE + 0x48], 0x0000FFFF
    mov dword [GDT_BASE + 0x4C], 0x00CF1200   ; P=0
    mov dword [GDT_BASE + 0x50], 0x0000FFFF
    mov dword [GDT_BASE + 0x54], 0x00CF9000   ; read-only data
    ; #DE: div by zero (2 bytes: F7 F1)
    xor ecx, ecx
    PROBE 'de', 2, {div ecx}
    ;! de=00000000
    ;! de_err=FFFFFFFF
    ; #UD: UD2 (2 bytes)
    PROBE 'ud', 2, {ud2}
    ;! ud=00000006
    ;! ud_err=FFFFFFFF
    ; #BP: INT3 is a trap: EIP already past it, skip 0
    PROBE 'bp', 0, {int3}
    ;! bp=00000003
    ;! bp_err=FFFFFFFF
    ; #OF: INTO with OF=1 (trap)
    mov al, 0x7F
    add al, 1
    PROBE 'of', 0, {into}
    ;! of=00000004
    ;! of_err=FFFFFFFF
    ; #BR: BOUND out of range (6 bytes: 62 05 disp32)
    mov dword [0x20100], 10
    mov dword [0x20104], 20
    mov eax, 30
    PROBE 'br', 6, {bound eax, [0x20100]}
    ;! br=00000005
    ;! br_err=FFFFFFFF
    ; #NP: load not-present data segment 48h into DS (mov ds, ax = 2 bytes)
    mov ax, 0x48
    PROBE 'np', 2, {mov ds, ax}
    ;! np=0000000B
    ;! np_err=00000048
    ; #GP: selector beyond the GDT limit
    mov ax, 0x1F8
    PROBE 'gp_limit', 2, {mov es, ax}
    ;! gp_limit=0000000D
    ;! gp_limit_err=000001F8
    ; #GP(0): write to a read-only segment
    mov ax, 0x50
    mov es, ax
    PROBE '~gp_ro', 7, {mov dword [es:0x20200], 1}
    ;! ~gp_ro=0000000D
    ;! ~gp_ro_err=00000000
    mov ax, 0x10
    mov es, ax
    ; #GP: code segment loaded into SS
    mov ax, 0x08
    PROBE 'gp_ss', 2, {mov ss, ax}
    ;! gp_ss=0000000D
    ;! gp_ss_err=00000008
    ; #GP(0): access beyond a segment limit (data16 at 20h has a 64 KiB limit)
    mov ax, 0x20
    mov fs, ax
    PROBE '~gp_lim', 9, {mov dword [fs:0x10000], 1}
    ;! ~gp_lim=0000000D
    ;! ~gp_lim_err=00000000
    ; #UD: LOCK with a register operand is fine? (LOCK NOP is #UD on real CPUs; not probed)
    ; LAR / LSL / VERR / VERW
    mov ax, 0x30
    lar ebx, eax
    lsl ecx, eax
    PUT 'lar', ebx                  ;! lar=00C0F200 (never loaded: accessed bit clear)
    PUT 'lsl', ecx                  ;! lsl=FFFFFFFF
    mov ax, 0x50
    verw ax
    setz bl
    movzx ebx, bl
    PUT 'verw_ro', ebx              ;! verw_ro=00000000

    ; ---- TSS for ring transitions ----
    mov dword [TSS0 + 4], 0x90000   ; ESP0 (reset below before the switch)
    mov dword [TSS0 + 8], 0x10      ; SS0
    mov word [TSS0 + 0x66], 0x68    ; no I/O bitmap
    mov eax, TSS0
    mov word [GDT_BASE + 0x38], 0x67
    mov word [GDT_BASE + 0x3A], ax
    shr eax, 16
    mov byte [GDT_BASE + 0x3C], al
    mov byte [GDT_BASE + 0x3D], 0x89
    mov byte [GDT_BASE + 0x3E], 0
    mov byte [GDT_BASE + 0x3F], ah
    mov ax, 0x38
    ltr ax
    str bx
    movzx ebx, bx
    PUT 'str', ebx                  ;! str=00000038
    mov eax, [GDT_BASE + 0x3C]
    shr eax, 8
    and eax, 0xF
    PUT 'tss_busy_type', eax        ;! tss_busy_type=0000000B

    ; call gate at 58h: DPL 3, to ring-0 code at callgate_target, 1 dword parameter
    mov eax, callgate_target
    mov word [GDT_BASE + 0x58], ax
    mov word [GDT_BASE + 0x5A], 0x08
    mov byte [GDT_BASE + 0x5C], 1
    mov byte [GDT_BASE + 0x5D], 0xEC
    shr eax, 16
    mov word [GDT_BASE + 0x5E], ax

    ; ---- to ring 3 ----
    mov [saved_esp0], esp
    mov [TSS0 + 4], esp
    push dword 0x33                 ; SS (ring 3)
    push dword 0x80000              ; ESP
    push dword 0x202                ; EFLAGS (IF=1, IOPL=0)
    push dword 0x2B                 ; CS (ring 3)
    push dword ring3
    iretd
ring3:
    mov ax, 0x33
    mov ds, ax
    mov es, ax
    mov ebx, cs
    mov [0x20300], ebx
    ; CLI at CPL 3 with IOPL 0: #GP(0) -> would go to the ring-0 handler; instead test via syscall
    mov eax, 0x1234
    int 0x80                        ; -> syscall (ring 0) which stores its CS/SS and the pushed frame
    mov [0x20304], eax
    ; far call through the call gate with one parameter
    push dword 0xCAFE
    call 0x5B:0                     ; gate selector with RPL 3
    mov [0x20308], eax
    ; privileged instruction at ring 3: HLT -> #GP(0) handled by ring-0 handler which returns to us
    mov dword [RESULTS + 8], 1
    hlt
    mov eax, [RESULTS + 4]
    mov [0x2030C], eax
    mov eax, [RESULTS]
    mov [0x20310], eax
    int 0x80                        ; eax=... second syscall: return to ring 0 for good
    jmp $

syscall:
    cmp dword [0x20320], 1
    je back_to_ring0
    mov dword [0x20320], 1
    mov ebx, cs
    mov [0x20314], ebx
    mov ebx, ss
    mov [0x20318], ebx
    mov ebx, [esp + 16]             ; pushed SS of ring 3
    mov [0x2031C], ebx
    add eax, 1
    iretd

callgate_target:
    mov eax, [esp + 8]              ; the copied parameter (above CS:EIP on the ring-0 stack)
    mov ebx, [esp + 16]             ; old SS pushed by the gate
    mov [0x20324], ebx
    retf 4

back_to_ring0:
    mov esp, [saved_esp0]
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    PUT 'r3_cs', [0x20300]          ;! r3_cs=0000002B
    PUT 'sys_ret', [0x20304]        ;! sys_ret=00001235
    PUT 'sys_cs', [0x20314]         ;! sys_cs=00000008
    PUT 'sys_ss', [0x20318]         ;! sys_ss=00000010
    PUT 'sys_old_ss', [0x2031C]     ;! sys_old_ss=00000033
    PUT 'gate_param', [0x20308]     ;! gate_param=0000CAFE
    PUT 'gate_old_ss', [0x20324]    ;! gate_old_ss=00000033
    PUT 'r3_hlt_vec', [0x20310]     ;! r3_hlt_vec=0000000D
    PUT 'r3_hlt_err', [0x2030C]     ;! r3_hlt_err=00000000

    ; ---- back to real mode through a 16-bit segment, keeping a 4 GiB limit in FS (unreal mode) ----
    mov ax, 0x10
    mov fs, ax
    jmp 0x18:pm16
bits 16
pm16:
    mov ax, 0x20
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr0
    and al, 0xFE
    mov cr0, eax
    jmp 0xF000:rm_again
rm_again:
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov fs, ax                      ; real-mode load: base 0, limit stays 4 GiB
    mov dword [fs:0x00200000], 0x600DF00D   ; above 1 MiB through FS: no #GP in unreal mode
    mov eax, [fs:0x00200000]
    mov [0x0600], eax
    ENTER_PM32 final32
bits 32
final32:
    PUT 'unreal', [0x0600]          ;! unreal=600DF00D
    EXIT32

saved_esp0: equ 0x20400
%include "rom_end.inc"
