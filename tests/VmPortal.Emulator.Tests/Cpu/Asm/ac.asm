; Alignment check: with CR0.AM=1 and EFLAGS.AC=1 at CPL 3, a misaligned word/dword data access (including a
; stack push) raises #AC with error code 0 and does not happen; aligned and byte accesses are fine; no #AC with
; AC=0, with AM=0, or at CPL 0. QEMU TCG does not implement #AC, so the fault results are '~' lines.
%include "rom.inc"
%include "probe.inc"

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 17, 1

%define SAVED_ESP0 0x20400
%define R3 0x20500                  ; results written at ring 3

; PROBE3 slot, length, instruction : at ring 3, stores the vector seen (or EEEEEEEE) in [R3 + slot*4]
%macro PROBE3 3+
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 8], %2
    %3
    mov ecx, [RESULTS]
    mov [R3 + %1*4], ecx
%endmacro

main32:
    SET_GATE 17, fault_17, 0x8E, 0x08
    SET_GATE 0x80, syscall, 0xEE, 0x08
    SETUP_TSS 0x38, TSS0
    mov dword [TSS0 + 8], 0x10
    mov ax, 0x38
    ltr ax
    mov eax, cr0
    or eax, 1 << 18                 ; AM
    mov cr0, eax
    ; CPL 0 with AM and AC: no alignment check
    pushfd
    or dword [esp], 1 << 18
    popfd
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [0x30000], 0x11223344
    mov dword [0x30004], 0x55667788
    mov eax, [0x30001]
    PUT 'cpl0_misaligned', eax      ;! cpl0_misaligned=88112233
    PUT 'cpl0_vector', [RESULTS]    ;! cpl0_vector=EEEEEEEE
    pushfd
    and dword [esp], ~(1 << 18)
    popfd

    mov [SAVED_ESP0], esp
    mov [TSS0 + 4], esp
    push dword 0x33
    push dword 0x80000
    push dword 0x40202              ; AC=1, IF=1
    push dword 0x2B
    push dword ring3
    iretd
ring3:
    mov ax, 0x33
    mov ds, ax
    mov es, ax
    mov ebx, 0x30001
    PROBE3 0, 2, {mov eax, [ebx]}           ; misaligned dword read
    mov ebx, 0x30003
    mov eax, 0xBEEF
    PROBE3 1, 3, {mov [ebx], ax}            ; misaligned word write: not done
    mov ebx, 0x30002
    PROBE3 2, 3, {mov [ebx], ax}            ; aligned word: fine
    mov ebx, 0x30007
    PROBE3 3, 2, {mov al, [ebx]}            ; byte: fine
    mov ebx, 0x30004
    PROBE3 4, 2, {mov eax, [ebx]}           ; aligned dword: fine
    ; push with a misaligned stack pointer: #AC, ESP unchanged
    mov esi, esp
    sub esp, 2
    PROBE3 5, 1, {push eax}
    mov edi, esp
    mov esp, esi
    sub edi, esi
    mov [R3 + 6*4], edi                     ; ESP change by the faulting push
    ; AC=0: no check
    pushfd
    and dword [esp], ~(1 << 18)
    popfd
    mov ebx, 0x30001
    PROBE3 7, 2, {mov eax, [ebx]}
    mov [R3 + 8*4], eax
    ; AC=1 again, then AM=0 (through ring 0): no check
    pushfd
    or dword [esp], 1 << 18
    popfd
    mov eax, 1
    int 0x80                                ; clears CR0.AM, returns with AC still 1
    pushfd
    pop eax
    and eax, 1 << 18
    mov [R3 + 9*4], eax
    mov ebx, 0x30001
    PROBE3 10, 2, {mov eax, [ebx]}
    mov eax, 2
    int 0x80                                ; back to ring 0 for good
    jmp $

syscall:
    cmp eax, 2
    je .final
    mov eax, cr0
    and eax, ~(1 << 18)
    mov cr0, eax
    iretd
.final:
    mov esp, [SAVED_ESP0]
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    PUT '~r3_misaligned_dword', [R3 + 0*4]  ;! ~r3_misaligned_dword=00000011
    PUT '~r3_misaligned_word', [R3 + 1*4]   ;! ~r3_misaligned_word=00000011
    PUT '~r3_error_code', [RESULTS + 4]     ;! ~r3_error_code=00000000
    PUT 'r3_words', [0x30000]               ;! r3_words=BEEF3344
    PUT '~r3_word_not_written', [0x30004]   ;! ~r3_word_not_written=55667788
    PUT 'r3_aligned_word', [R3 + 2*4]       ;! r3_aligned_word=EEEEEEEE
    PUT 'r3_byte', [R3 + 3*4]               ;! r3_byte=EEEEEEEE
    PUT 'r3_aligned_dword', [R3 + 4*4]      ;! r3_aligned_dword=EEEEEEEE
    PUT '~r3_push', [R3 + 5*4]              ;! ~r3_push=00000011
    PUT '~r3_push_esp_delta', [R3 + 6*4]    ;! ~r3_push_esp_delta=FFFFFFFE
    PUT 'r3_ac0', [R3 + 7*4]                ;! r3_ac0=EEEEEEEE
    PUT '~r3_ac0_value', [R3 + 8*4]         ;! ~r3_ac0_value=88BEEF33
    PUT 'r3_ac_still_set', [R3 + 9*4]       ;! r3_ac_still_set=00040000
    PUT 'r3_am0', [R3 + 10*4]               ;! r3_am0=EEEEEEEE
    EXIT32
%include "rom_end.inc"
