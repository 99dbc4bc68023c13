; LOCK prefix: allowed only on ADD ADC AND BTC BTR BTS CMPXCHG CMPXCHG8B DEC INC NEG NOT OR SBB SUB XCHG XADD XOR
; with a memory destination; on any other instruction, or with a register destination, it raises #UD (no error
; code) and the instruction does nothing. QEMU 7.2 TCG runs LOCK MOV, LOCK TEST and LOCK BT with a memory operand
; (those results are '~' lines); it raises #UD for the others.
[warning -prefix-lock]
%include "rom.inc"
%include "probe.inc"
%define MEM 0x20100

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 6, 0

; LOCKED name, length, instruction : MEM = 10h and EAX = 1 before; prints the vector (EEEEEEEE: none)
%macro LOCKED 3+
    mov dword [MEM], 0x10
    mov eax, 1
    mov ebx, 3
    mov ecx, 0x55
    mov dword [RESULTS], 0xEEEEEEEE
    mov dword [RESULTS + 8], %2
    %3
    PUT %1, [RESULTS]
%endmacro

main32:
    SET_GATE 6, fault_6, 0x8E, 0x08
    ; not lockable: #UD, nothing done
    LOCKED '~mov_mem', 7, {lock mov [MEM], eax}
    ;! ~mov_mem=00000006
    PUT '~mov_mem_value', [MEM]                 ;! ~mov_mem_value=00000010
    LOCKED 'add_reg', 3, {lock add ebx, eax}
    ;! add_reg=00000006
    PUT 'add_reg_value', ebx                   ;! add_reg_value=00000003
    LOCKED 'nop', 2, {lock nop}
    ;! nop=00000006
    LOCKED 'cmp_mem', 7, {lock cmp [MEM], eax}
    ;! cmp_mem=00000006
    LOCKED 'cmp_imm', 8, {lock cmp dword [MEM], 5}
    ;! cmp_imm=00000006
    LOCKED '~test_mem', 7, {lock test [MEM], eax}
    ;! ~test_mem=00000006
    LOCKED '~bt_mem', 8, {lock bt [MEM], eax}
    ;! ~bt_mem=00000006
    LOCKED 'load', 7, {lock add eax, [MEM]}
    ;! load=00000006
    PUT 'load_value', eax                      ;! load_value=00000001
    LOCKED 'inc_reg', 2, {lock inc eax}
    ;! inc_reg=00000006
    ; lockable with a memory destination: done, no fault
    LOCKED 'add_mem', 7, {lock add [MEM], eax}
    ;! add_mem=EEEEEEEE
    PUT 'add_mem_value', [MEM]                  ;! add_mem_value=00000011
    LOCKED 'sub_imm', 8, {lock sub dword [MEM], 2}
    ;! sub_imm=EEEEEEEE
    PUT 'sub_imm_value', [MEM]                  ;! sub_imm_value=0000000E
    LOCKED 'xchg_mem', 7, {lock xchg [MEM], eax}
    ;! xchg_mem=EEEEEEEE
    PUT 'xchg_mem_value', [MEM]                 ;! xchg_mem_value=00000001
    LOCKED 'inc_mem', 7, {lock inc dword [MEM]}
    ;! inc_mem=EEEEEEEE
    PUT 'inc_mem_value', [MEM]                  ;! inc_mem_value=00000011
    LOCKED 'not_mem', 7, {lock not dword [MEM]}
    ;! not_mem=EEEEEEEE
    PUT 'not_mem_value', [MEM]                  ;! not_mem_value=FFFFFFEF
    LOCKED 'bts_mem', 9, {lock bts dword [MEM], 0}
    ;! bts_mem=EEEEEEEE
    PUT 'bts_mem_value', [MEM]                  ;! bts_mem_value=00000011
    LOCKED 'xadd_mem', 8, {lock xadd [MEM], eax}
    ;! xadd_mem=EEEEEEEE
    PUT 'xadd_mem_value', [MEM]                 ;! xadd_mem_value=00000011
    LOCKED 'cmpxchg_mem', 8, {lock cmpxchg [MEM], ecx}
    ;! cmpxchg_mem=EEEEEEEE
    PUT 'cmpxchg_mem_value', [MEM]              ;! cmpxchg_mem_value=00000010
    LOCKED 'or_byte', 8, {lock or byte [MEM + 1], 0x80}
    ;! or_byte=EEEEEEEE
    PUT 'or_byte_value', [MEM]                  ;! or_byte_value=00008010
    EXIT32
%include "rom_end.inc"
