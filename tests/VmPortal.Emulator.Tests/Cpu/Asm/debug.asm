; Debug registers and #DB: an instruction breakpoint (a fault before the instruction, RF lets it resume once),
; data write and read/write breakpoints of 4 and 2 bytes (traps after the access, overlap rules), a write
; breakpoint hit in the middle of REP STOSD (trap between iterations, EIP on the REP, ECX = what is left),
; single-step with TF (the POPF that sets TF is not trapped, the one that clears it is; DR6.BS), the INT n
; exception to single-step, MOV SS delaying the single-step trap by one instruction, I/O breakpoints with CR4.DE, DR7.GD (MOV DR faults with DR6.BD, GD cleared on #DB
; entry), DR4/DR5 aliasing DR6/DR7 with CR4.DE=0 and #UD with CR4.DE=1 (the L0-L3 reset by a task switch is
; in tasks.asm). Instruction breakpoints run in a flat code segment (48h, base 0) so that EIP equals the
; linear address on both CPUs (QEMU compares DRn with EIP).
%include "rom.inc"
%include "probe.inc"
%define DBCOUNT 0x21000
%define DB_DR6  0x21004
%define DB_EIP  0x21008
%define DB_EFL  0x2100C
%define DB_ECX  0x21010
%define FLAT_CS 0x48
%define DB_LOG  0x21100

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 6, 0

; #DB: count it, record DR6, the pushed EIP/EFLAGS and ECX, clear DR6, resume with RF=1.
db_handler:
    push eax
    push ebx
    mov ebx, [DBCOUNT]
    mov eax, [esp + 8]
    mov [DB_LOG + ebx*4], eax       ; the EIP of every #DB, in order
    pop ebx
    inc dword [DBCOUNT]
    mov eax, dr6
    mov [DB_DR6], eax
    mov eax, [esp + 4]
    mov [DB_EIP], eax
    mov eax, [esp + 12]
    mov [DB_EFL], eax
    mov [DB_ECX], ecx
    mov eax, 0xFFFF0FF0
    mov dr6, eax
    or dword [esp + 12], 0x10000
    pop eax
    iretd

soft_int:
    iretd

%macro RESET_DB 0
    mov dword [DBCOUNT], 0
    mov dword [DB_DR6], 0
    mov dword [DB_EIP], 0
%endmacro

main32:
    SET_GATE 1, db_handler, 0x8E, 0x08
    SET_GATE 6, fault_6, 0x8E, 0x08
    SET_GATE 0x40, soft_int, 0x8E, 0x08
    ; flat ring-0 code segment at 48h (base 0, 4 GiB)
    mov dword [GDT_BASE + FLAT_CS], 0x0000FFFF
    mov dword [GDT_BASE + FLAT_CS + 4], 0x00CF9A00
    mov eax, dr6
    PUT 'dr6_reset', eax                    ;! dr6_reset=FFFF0FF0
    mov eax, dr7
    PUT 'dr7_reset', eax                    ;! dr7_reset=00000400

    ; ---- instruction breakpoint (DR0, G0, R/W 00) ----
    RESET_DB
    jmp dword FLAT_CS:ROM_BASE + .flat1
.flat1:
    mov eax, ROM_BASE + .bp_target
    mov dr0, eax
    mov eax, 0x00000402
    mov dr7, eax
    xor ebx, ebx
.bp_target:
    inc ebx
    inc ebx
    xor eax, eax
    mov dr7, eax
    jmp dword 0x08:.back1
.back1:
    PUT 'exec_count', [DBCOUNT]             ;! exec_count=00000001
    PUT 'exec_dr6', [DB_DR6]                ;! exec_dr6=FFFF0FF1
    mov eax, [DB_EIP]
    sub eax, ROM_BASE + .bp_target
    PUT 'exec_eip_at_insn', eax             ;! exec_eip_at_insn=00000000
    PUT 'exec_ebx', ebx                     ;! exec_ebx=00000002
    mov eax, [DB_EFL]
    and eax, 0x10000
    PUT 'exec_pushed_rf', eax               ;! exec_pushed_rf=00000000

    ; ---- data write breakpoint, 4 bytes at 20100h (DR1, G1, R/W 01, LEN 11) ----
    RESET_DB
    mov eax, 0x20100
    mov dr1, eax
    mov eax, 0x00D00408
    mov dr7, eax
    mov ebx, [0x20100]                      ; a read: no hit
    PUT 'dw_read_count', [DBCOUNT]          ;! dw_read_count=00000000
    mov dword [0x20100], 0x12345678
.dw_after:
    PUT 'dw_count', [DBCOUNT]               ;! dw_count=00000001
    PUT 'dw_dr6', [DB_DR6]                  ;! dw_dr6=FFFF0FF2
    mov eax, [DB_EIP]
    sub eax, .dw_after
    PUT 'dw_eip_after_insn', eax            ;! dw_eip_after_insn=00000000
    PUT 'dw_value_written', [0x20100]       ;! dw_value_written=12345678
    mov byte [0x20103], 1                   ; inside the 4 bytes
    PUT 'dw_byte_count', [DBCOUNT]          ;! dw_byte_count=00000002
    mov dword [0x20104], 1                  ; just after: no hit
    mov word [0x200FE], 1                   ; just before: no hit
    PUT 'dw_outside_count', [DBCOUNT]       ;! dw_outside_count=00000002
    mov dword [0x200FE], 0                  ; overlaps the first two bytes
    PUT 'dw_overlap_count', [DBCOUNT]       ;! dw_overlap_count=00000003

    ; ---- read/write breakpoint, 2 bytes at 20200h (DR2, G2, R/W 11, LEN 01) ----
    RESET_DB
    mov eax, 0x20200
    mov dr2, eax
    mov eax, 0x07000420
    mov dr7, eax
    mov ax, [0x201FF]                       ; overlaps 20200h
    PUT 'rw_read_count', [DBCOUNT]          ;! rw_read_count=00000001
    PUT 'rw_dr6', [DB_DR6]                  ;! rw_dr6=FFFF0FF4
    mov eax, [0x20202]                      ; after the 2 bytes: no hit
    add dword [0x20201], 1                  ; read-modify-write: one trap
    PUT '~rw_rmw_count', [DBCOUNT]          ;! ~rw_rmw_count=00000002 (QEMU: 3, a trap for the read and one for the write)

    ; ---- write breakpoint hit by REP STOSD at its third iteration ----
    RESET_DB
    mov eax, 0x20308
    mov dr1, eax
    mov eax, 0x00D00408
    mov dr7, eax
    mov edi, 0x20300
    mov ecx, 8
    mov eax, 0xA5A5A5A5
    cld
.rep_insn:
    rep stosd
    PUT 'rep_count', [DBCOUNT]              ;! rep_count=00000001
    mov eax, [DB_EIP]
    sub eax, .rep_insn
    PUT 'rep_eip_on_rep', eax               ;! rep_eip_on_rep=00000000
    PUT 'rep_ecx_left', [DB_ECX]            ;! rep_ecx_left=00000005
    PUT 'rep_ecx_end', ecx                  ;! rep_ecx_end=00000000
    PUT 'rep_last', [0x2031C]               ;! rep_last=A5A5A5A5
    mov eax, [DB_EFL]
    and eax, 0x10000
    PUT '~rep_pushed_rf', eax               ;! ~rep_pushed_rf=00010000
    xor eax, eax
    mov dr7, eax

    ; ---- single-step ----
    RESET_DB
    pushfd
    or dword [esp], 0x100
    popfd                                   ; sets TF: no trap after it
    nop                                     ; 1
    nop                                     ; 2
    pushfd                                  ; 3
    and dword [esp], ~0x100                 ; 4
    popfd                                   ; 5: started with TF=1
.ss_after:
    nop
    PUT 'ss_count', [DBCOUNT]               ;! ss_count=00000005
    PUT 'ss_dr6', [DB_DR6]                  ;! ss_dr6=FFFF4FF0
    mov eax, [DB_EIP]
    sub eax, .ss_after
    PUT 'ss_last_eip', eax                  ;! ss_last_eip=00000000
    ; INT n clears TF for its handler and is not trapped itself; the instruction after the IRET is
    RESET_DB
    pushfd
    or dword [esp], 0x100
    popfd
    int 0x40                                ; not trapped; its handler runs with TF=0 (IRET not trapped)
    nop                                     ; 1
    pushfd                                  ; 2
    and dword [esp], ~0x100                 ; 3
    popfd                                   ; 4
.int_end:
    PUT 'ss_int_count', [DBCOUNT]           ;! ss_int_count=00000004
    mov eax, [DB_EIP]
    sub eax, .int_end
    PUT 'ss_int_last_eip', eax              ;! ss_int_last_eip=00000000

    ; MOV SS delays the single-step trap past the next instruction: one #DB for both, after the second
    RESET_DB
    pushfd
    or dword [esp], 0x100
    popfd
    mov ax, ss                              ; 1
    mov ss, ax                              ; no trap here
    nop                                     ; 2: after the NOP
.movss_after:
    pushfd                                  ; 3
    and dword [esp], ~0x100                 ; 4
    popfd                                   ; 5
    PUT 'movss_count', [DBCOUNT]            ;! movss_count=00000005
    mov eax, [DB_LOG + 4]
    sub eax, .movss_after
    PUT 'movss_second_eip', eax             ;! movss_second_eip=00000000

    ; ---- I/O breakpoint on port 80h (CR4.DE=1, DR3, G3, R/W 10) ----
    RESET_DB
    mov eax, cr4
    or eax, 8
    mov cr4, eax
    mov eax, 0x80
    mov dr3, eax
    mov eax, 0x20000480
    mov dr7, eax
    mov al, 0x55
    out 0x81, al                            ; other port: no hit
    out 0x80, al
.io_after:
    PUT 'io_count', [DBCOUNT]               ;! io_count=00000001
    PUT 'io_dr6', [DB_DR6]                  ;! io_dr6=FFFF0FF8
    mov eax, [DB_EIP]
    sub eax, .io_after
    PUT 'io_eip_after_insn', eax            ;! io_eip_after_insn=00000000
    xor eax, eax
    mov dr7, eax

    ; ---- DR4/DR5 with CR4.DE=1: #UD ----
    mov dword [RESULTS + 8], 3
    mov dword [RESULTS], 0xEEEEEEEE
    mov eax, dr4
    PUT 'dr4_de_ud', [RESULTS]              ;! dr4_de_ud=00000006
    mov dword [RESULTS], 0xEEEEEEEE
    mov dr5, eax
    PUT 'dr5_de_ud', [RESULTS]              ;! dr5_de_ud=00000006
    ; ---- DR4/DR5 with CR4.DE=0: DR6/DR7 ----
    mov eax, cr4
    and eax, ~8
    mov cr4, eax
    xor eax, eax
    mov dr0, eax
    mov eax, 0x00000401
    mov dr5, eax                            ; = DR7
    mov eax, dr7
    PUT 'dr5_is_dr7', eax                   ;! dr5_is_dr7=00000401
    xor eax, eax
    mov dr7, eax
    mov eax, 0xFFFF0FF2
    mov dr6, eax
    mov eax, dr4
    PUT 'dr4_is_dr6', eax                   ;! dr4_is_dr6=FFFF0FF2

    ; ---- DR7.GD: the next MOV DR raises #DB (fault) with DR6.BD; GD is cleared on #DB entry ----
    mov eax, 0xFFFF0FF0
    mov dr6, eax
    RESET_DB
    mov eax, 0x2400
    mov dr7, eax
.gd_insn:
    mov ebx, dr0
    PUT '~gd_count', [DBCOUNT]              ;! ~gd_count=00000001
    PUT '~gd_dr6', [DB_DR6]                 ;! ~gd_dr6=FFFF2FF0
    mov eax, [DB_EIP]
    sub eax, .gd_insn
    PUT '~gd_eip_at_insn', eax              ;! ~gd_eip_at_insn=00000000
    mov eax, dr7
    PUT '~gd_cleared', eax                  ;! ~gd_cleared=00000400
    EXIT32
%include "rom_end.inc"
