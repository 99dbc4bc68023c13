; Paging: 4 KiB and 4 MiB (PSE) pages, #PF error codes and CR2 for not-present / write-protect (CR0.WP) /
; user-supervisor violations, accessed and dirty bits, INVLPG, global pages kept across a CR3 reload.
%include "rom.inc"
%include "probe.inc"
%define PD 0x10000
%define PT 0x11000

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 13, 1
FAULT_HANDLER 14, 1

main32:
    SET_GATE 13, fault_13, 0x8E, 0x08
    SET_GATE 14, fault_14, 0x8E, 0x08
    SET_GATE 0x80, back0, 0xEE, 0x08
    ; page table: identity map 0-4 MiB, user + writable
    IDENTITY_PT PD, PT, 0x007
    ; PDE 1 -> 4 MiB page at 8 MiB (PSE), PDE 2 -> 4 MiB global page
    mov dword [PD + 4], 0x00800000 | 0x087
    mov dword [PD + 8], 0x00C00000 | 0x187     ; G=1
    ; special pages
    mov dword [PT + 0x30*4], 0x00030006        ; not present
    mov dword [PT + 0x31*4], 0x00031005        ; read-only, user
    mov dword [PT + 0x32*4], 0x00032003        ; supervisor only
    mov dword [PT + 0x33*4], 0x00033007        ; A/D probe page
    mov dword [PT + 0x34*4], 0x00034007        ; remapped later
    mov dword [0x34000], 0x34343434
    mov dword [0x35000], 0x35353535
    mov dword [0x00800010], 0x88888888         ; physical 8 MiB + 10h
    mov dword [0x00C00020], 0xCCCCCCCC
    mov eax, PD
    mov cr3, eax
    mov eax, cr4
    or eax, 0x90                                ; PSE | PGE
    mov cr4, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .flush
.flush:
    PUT 'pse_read', [0x00400010]               ;! pse_read=88888888
    mov eax, [PD + 4]
    and eax, 0x60
    PUT 'pse_pde_ad', eax                      ;! pse_pde_ad=00000020
    ; not-present read: error 0, CR2 = address
    PROBE 'pf_np', 6, {mov ebx, [0x30004]}
    ;! pf_np=0000000E
    ;! pf_np_err=00000000
    PUT 'pf_np_cr2', [RESULTS + 12]            ;! pf_np_cr2=00030004
    ; not-present write: error 2
    PROBE 'pf_npw', 10, {mov dword [0x30008], 1}
    ;! pf_npw=0000000E
    ;! pf_npw_err=00000002
    ; read-only page written by the supervisor: allowed while CR0.WP=0
    mov dword [0x31000], 0x31313131
    PUT 'wp0_write', [0x31000]                 ;! wp0_write=31313131
    mov eax, cr0
    or eax, 0x10000
    mov cr0, eax
    PROBE 'pf_wp', 10, {mov dword [0x31004], 2}
    ;! pf_wp=0000000E
    ;! pf_wp_err=00000003
    PUT 'pf_wp_cr2', [RESULTS + 12]            ;! pf_wp_cr2=00031004
    ; accessed / dirty bits
    mov dword [PT + 0x33*4], 0x00033007
    invlpg [0x33000]
    mov eax, [0x33000]
    mov eax, [PT + 0x33*4]
    and eax, 0x60
    PUT 'ad_read', eax                         ;! ad_read=00000020
    mov dword [0x33000], 5
    mov eax, [PT + 0x33*4]
    and eax, 0x60
    PUT 'ad_write', eax                        ;! ad_write=00000060
    ; INVLPG makes a changed mapping visible
    mov eax, [0x34000]
    mov dword [PT + 0x34*4], 0x00035007
    invlpg [0x34000]
    PUT 'invlpg', [0x34000]                    ;! invlpg=35353535
    ; the global 4 MiB page: linear 8 MiB -> physical 12 MiB
    mov eax, [0x00800020]
    PUT 'global_read', eax                     ;! global_read=CCCCCCCC
    ; ring 3: user read of a supervisor page -> error 5; user write to read-only page -> error 7
    SETUP_TSS 0x38, TSS0
    mov dword [TSS0 + 8], 0x10
    mov word [TSS0 + 0x66], 0x68
    mov ax, 0x38
    ltr ax
    mov [0x20400], esp
    mov [TSS0 + 4], esp
    push dword 0x33
    push dword 0x80000
    push dword 0x202
    push dword 0x2B
    push dword ring3
    iretd
ring3:
    mov ax, 0x33
    mov ds, ax
    mov es, ax
    mov dword [RESULTS + 8], 6
    mov ebx, [0x32000]
    mov eax, [RESULTS + 4]
    mov [0x20500], eax
    mov eax, [RESULTS + 12]
    mov [0x20504], eax
    mov dword [RESULTS + 8], 10
    mov dword [0x31008], 3
    mov eax, [RESULTS + 4]
    mov [0x20508], eax
    int 0x80
back0:
    mov esp, [0x20400]
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    PUT 'pf_user_err', [0x20500]               ;! pf_user_err=00000005
    PUT 'pf_user_cr2', [0x20504]               ;! pf_user_cr2=00032000
    PUT 'pf_user_wp_err', [0x20508]            ;! pf_user_wp_err=00000007
    ; paging off again
    mov eax, cr0
    and eax, 0x7FFFFFFF
    mov cr0, eax
    PUT 'phys_again', [0x34000]                ;! phys_again=34343434
    EXIT32
%include "rom_end.inc"
