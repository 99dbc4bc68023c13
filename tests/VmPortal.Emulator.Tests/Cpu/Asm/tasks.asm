; Hardware task switches: JMP to a TSS, CALL to a TSS (nested task: NT flag and back link) returning with IRET,
; a task gate in the IDT; then a double fault (#NP while delivering #GP) taken through an interrupt gate with
; error code 0. Any task switch clears the local breakpoint enables DR7.L0-L3 (G0-G3 stay); a TSS with its T bit
; set raises #DB (DR6.BT) before the new task's first instruction.
%include "rom.inc"
%include "probe.inc"

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 11, 1

main32:
    SETUP_TSS 0x38, TSS0
    SETUP_TSS 0x40, TSS1
    mov ax, 0x38
    ltr ax
    ; task gate for vector 81h -> TSS1
    mov word [IDT_BASE + 0x81*8], 0
    mov word [IDT_BASE + 0x81*8 + 2], 0x40
    mov byte [IDT_BASE + 0x81*8 + 4], 0
    mov byte [IDT_BASE + 0x81*8 + 5], 0x85
    mov word [IDT_BASE + 0x81*8 + 6], 0

    ; 1. JMP to task 1; task 1 JMPs back.
    call init_tss1
    mov dword [TSS1 + 0x20], task1_jmp
    xor eax, eax
    mov dr0, eax
    mov eax, 0x00000403             ; L0 | G0 (an instruction breakpoint at linear 0, never reached)
    mov dr7, eax
    mov eax, 0x1111
    jmp 0x40:0
after_jmp:
    mov ebx, dr7
    PUT 'dr7_after_switch', ebx     ;! dr7_after_switch=00000402
    xor ebx, ebx
    mov dr7, ebx
    str bx
    movzx ebx, bx
    PUT 'jmp_back_tr', ebx          ;! jmp_back_tr=00000038
    PUT 'task1_tr', [0x20600]       ;! task1_tr=00000040
    PUT 'task1_eax', [0x20604]      ;! task1_eax=0000AAAA
    PUT 'kept_eax', eax             ;! kept_eax=00001111
    mov eax, [GDT_BASE + 0x44]
    shr eax, 8
    and eax, 0xF
    PUT 'tss1_type_after_jmp', eax  ;! tss1_type_after_jmp=00000009

    ; 2. CALL task 1 (nested): task 1 sees NT=1 and the back link, returns with IRET.
    call init_tss1
    mov dword [TSS1 + 0x20], task1_call
    call 0x40:0
    PUT 'call_nt', [0x20610]        ;! call_nt=00004000
    PUT 'call_link', [0x20614]      ;! call_link=00000038
    pushfd
    pop eax
    and eax, 0x4000
    PUT 'nt_after_iret', eax        ;! nt_after_iret=00000000
    mov eax, cr0
    and eax, 8
    PUT 'cr0_ts', eax               ;! cr0_ts=00000008
    clts

    ; 3. INT 81h through the task gate.
    call init_tss1
    mov dword [TSS1 + 0x20], task1_call
    mov dword [0x20610], 0
    int 0x81
    PUT 'gate_nt', [0x20610]        ;! gate_nt=00004000
    PUT 'gate_link', [0x20614]      ;! gate_link=00000038

    ; 4. A TSS with its T bit set: #DB (DR6.BT) before the new task's first instruction.
    SET_GATE 1, db_handler, 0x8E, 0x08
    call init_tss1
    mov dword [TSS1 + 0x20], task1_jmp
    mov word [TSS1 + 0x64], 1                   ; T
    mov dword [0x20620], 0
    mov eax, 0xFFFF0FF0
    mov dr6, eax
    jmp 0x40:0
after_t:
    mov word [TSS1 + 0x64], 0
    PUT '~t_count', [0x20620]       ;! ~t_count=00000001
    PUT '~t_dr6', [0x20624]         ;! ~t_dr6=FFFF8FF0
    mov eax, [0x20628]
    sub eax, task1_jmp
    PUT '~t_eip', eax               ;! ~t_eip=00000000
    PUT '~t_tr', [0x2062C]          ;! ~t_tr=00000040

    ; 4. Double fault: vector 13's gate is not present -> #NP while delivering #GP -> #DF (error code 0).
    SET_GATE 8, df_handler, 0x8E, 0x08
    mov byte [IDT_BASE + 13*8 + 5], 0x0E        ; gate type with P=0
    mov [0x20700], esp
    mov ax, 0x1F8
    mov ds, ax                                  ; #GP(1F8h) -> #NP -> #DF
    jmp $
df_handler:
    pop eax
    mov esp, [0x20700]
    PUT 'df_err', eax               ;! df_err=00000000
    EXIT32

init_tss1:
    mov dword [TSS1 + 0x1C], 0              ; CR3
    mov dword [TSS1 + 0x24], 0x00000002     ; EFLAGS
    mov dword [TSS1 + 0x28], 0xAAAA         ; EAX
    mov dword [TSS1 + 0x38], 0x70000        ; ESP
    mov dword [TSS1 + 0x48], 0x10           ; ES
    mov dword [TSS1 + 0x4C], 0x08           ; CS
    mov dword [TSS1 + 0x50], 0x10           ; SS
    mov dword [TSS1 + 0x54], 0x10           ; DS
    mov dword [TSS1 + 0x58], 0x10           ; FS
    mov dword [TSS1 + 0x5C], 0x10           ; GS
    mov dword [TSS1 + 0x60], 0              ; LDT
    mov word [TSS1 + 0x66], 0x68
    ret

db_handler:                         ; records count, DR6, the pushed EIP and TR
    push eax
    inc dword [0x20620]
    mov eax, dr6
    mov [0x20624], eax
    mov eax, [esp + 4]
    mov [0x20628], eax
    str ax
    movzx eax, ax
    mov [0x2062C], eax
    pop eax
    iretd

task1_jmp:
    str bx
    movzx ebx, bx
    mov [0x20600], ebx
    mov [0x20604], eax
    jmp 0x38:0                      ; back to task 0, which resumes after its JMP
task1_call:
    pushfd
    pop eax
    and eax, 0x4000
    mov [0x20610], eax
    movzx eax, word [TSS1]
    mov [0x20614], eax
    iretd
%include "rom_end.inc"
