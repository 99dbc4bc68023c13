; Virtual-8086 mode extensions (CR4.VME) with IOPL=0: CLI/STI work on VIF without trapping; PUSHF pushes IF=VIF
; and IOPL=3; POPF loads VIF from IF; INT n whose bit in the TSS redirection bitmap is clear goes to the V86
; program's own vector table (and its 16-bit IRET returns through VME); #GP(0) for POPF setting TF, PUSHFD, an
; INT n whose bitmap bit is set, STI and POPF(IF=1) while VIP is set, HLT; INT3 is not IOPL-sensitive (it goes to
; the protected-mode handler). Then PVI: CLI/STI at CPL 3 with IOPL 0 clear/set VIF.
%include "rom.inc"
%include "probe.inc"
%define V86D 0x21000                ; V86 DS = 2100h
%define SKIP (V86D + 0x40)          ; length of the instruction the #GP handler skips (0: end)
%define SETVIP (V86D + 0x42)        ; 1: the #GP handler sets VIP in the returned EFLAGS
%define GPCOUNT 0x21200
%define GPLIST 0x21204
%define BPSEEN 0x21300
%define SAVED_ESP 0x21400

real_main:
    ENTER_PM32 main32
bits 32
main32:
    SETUP_TSS 0x38, TSS0
    mov dword [TSS0 + 8], 0x10
    mov word [TSS0 + 0x66], 0x88    ; I/O map base 88h: redirection bitmap at 68h-87h
    mov word [GDT_BASE + 0x38], 0x88 ; TSS limit: the bitmap is inside, the I/O map is not
    mov edi, TSS0 + 0x68
    mov ecx, 32
    xor al, al
    rep stosb
    or byte [TSS0 + 0x68 + 0x30/8], 1 << (0x30 & 7)   ; INT 30h: not redirected
    mov ax, 0x38
    ltr ax
    SET_GATE 13, gp_handler, 0x8E, 0x08
    SET_GATE 3, bp_handler, 0xEE, 0x08
    SET_GATE 0x80, syscall80, 0xEE, 0x08
    mov word [0x31*4], v86_int31    ; V86 vector table entry for INT 31h
    mov word [0x31*4 + 2], 0xF000
    mov dword [GPCOUNT], 0
    mov dword [BPSEEN], 0
    mov eax, cr4
    or eax, 1                       ; VME
    mov cr4, eax
    mov [SAVED_ESP], esp
    mov [TSS0 + 4], esp
    push dword 0                    ; GS
    push dword 0                    ; FS
    push dword 0x2100               ; DS
    push dword 0                    ; ES
    push dword 0x6000               ; SS
    push dword 0xFF00               ; ESP
    push dword 0x00020002           ; VM=1, IOPL=0, IF=0, VIF=0
    push dword 0xF000
    push dword v86_main
    iretd

gp_handler:
    add esp, 4                      ; error code
    push eax
    push ecx
    mov ax, 0x10
    mov ds, ax
    mov ecx, [GPCOUNT]
    mov eax, [esp + 8]              ; IP
    mov [GPLIST + ecx*4], eax
    inc dword [GPCOUNT]
    movzx eax, byte [SKIP]
    test eax, eax
    jz final
    add [esp + 8], eax
    cmp byte [SETVIP], 0
    je .novip
    or dword [esp + 16], 1 << 20    ; VIP
    mov byte [SETVIP], 0
.novip:
    pop ecx
    pop eax
    iretd

bp_handler:
    push eax
    mov ax, 0x10
    mov ds, ax
    mov eax, [esp + 12]             ; EFLAGS
    and eax, 0x20000
    or eax, 3
    mov [BPSEEN], eax
    pop eax
    iretd

final:
    mov esp, [SAVED_ESP]
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    PUT '~cli_pushf', [V86D + 0]    ;! ~cli_pushf=00003002
    PUT '~sti_pushf', [V86D + 4]    ;! ~sti_pushf=00003202
    PUT '~popf_if0', [V86D + 8]     ;! ~popf_if0=00003002
    PUT '~popf_if1_cf', [V86D + 12] ;! ~popf_if1_cf=00003203
    PUT '~int31_ran', [V86D + 16]   ;! ~int31_ran=00001234
    PUT '~int31_inner', [V86D + 20] ;! ~int31_inner=00003003
    PUT '~int31_pushed', [V86D + 24] ;! ~int31_pushed=00003203
    PUT '~int31_after', [V86D + 28] ;! ~int31_after=00003203
    PUT '~vip_cli', [V86D + 32]     ;! ~vip_cli=00003003
    PUT '~int3', [BPSEEN]           ;! ~int3=00020003
    PUT '~gp_count', [GPCOUNT]      ;! ~gp_count=00000007
    mov eax, [GPLIST + 0*4]
    sub eax, gp0
    PUT '~gp0_popf_tf', eax         ;! ~gp0_popf_tf=00000000
    mov eax, [GPLIST + 1*4]
    sub eax, gp1
    PUT '~gp1_pushfd', eax          ;! ~gp1_pushfd=00000000
    mov eax, [GPLIST + 2*4]
    sub eax, gp2
    PUT '~gp2_int30', eax           ;! ~gp2_int30=00000000
    mov eax, [GPLIST + 3*4]
    sub eax, gp3
    PUT '~gp3_pushfd', eax          ;! ~gp3_pushfd=00000000
    mov eax, [GPLIST + 4*4]
    sub eax, gp4
    PUT '~gp4_sti_vip', eax         ;! ~gp4_sti_vip=00000000
    mov eax, [GPLIST + 5*4]
    sub eax, gp5
    PUT '~gp5_popf_vip', eax        ;! ~gp5_popf_vip=00000000
    mov eax, [GPLIST + 6*4]
    sub eax, gp6
    PUT '~gp6_hlt', eax             ;! ~gp6_hlt=00000000

    ; ---- PVI: CLI/STI at CPL 3 with IOPL 0 work on VIF ----
    mov eax, cr4
    or eax, 2                       ; PVI
    mov cr4, eax
    mov dword [GPCOUNT], 0
    mov byte [SKIP], 1              ; a #GP on the 1-byte CLI/STI is counted and skipped
    mov [TSS0 + 4], esp
    push dword 0x33
    push dword 0x80000
    push dword 0x00000002           ; IOPL 0, IF 0
    push dword 0x2B
    push dword ring3
    iretd
ring3:
    mov ax, 0x33
    mov ds, ax
    sti
    pushfd
    pop eax
    mov [0x21500], eax
    cli
    pushfd
    pop eax
    mov [0x21504], eax
    mov eax, 1
    int 0x80
    jmp $
pvi_back:
    mov esp, [SAVED_ESP]
    mov ax, 0x10
    mov ds, ax
    mov eax, [0x21500]
    and eax, 0x80200                ; VIF | IF
    PUT '~pvi_sti', eax             ;! ~pvi_sti=00080000
    mov eax, [0x21504]
    and eax, 0x80200
    PUT '~pvi_cli', eax             ;! ~pvi_cli=00000000
    PUT '~pvi_gp_count', [GPCOUNT]  ;! ~pvi_gp_count=00000000
    mov eax, cr4
    and eax, ~3
    mov cr4, eax
    EXIT32

syscall80:
    jmp pvi_back

bits 16
v86_main:
    cli                             ; VIF = 0
    pushf
    pop ax
    mov [0], ax
    sti                             ; VIF = 1
    pushf
    pop ax
    mov [4], ax
    push word 0x0000
    popf                            ; VIF = 0
    pushf
    pop ax
    mov [8], ax
    push word 0x0201
    popf                            ; VIF = 1, CF = 1
    pushf
    pop ax
    mov [12], ax
    int 0x31                        ; redirected to v86_int31
    pushf
    pop ax
    mov [28], ax
    mov byte [0x40], 1
    push word 0x0100
gp0:
    popf                            ; TF = 1: #GP
    pop cx                          ; drop the word (flags unchanged)
    mov byte [0x40], 2
gp1:
    pushfd                          ; 32-bit: #GP
    mov byte [0x40], 2
gp2:
    int 0x30                        ; bitmap bit set, IOPL 0: #GP
    mov byte [0x42], 1              ; the next #GP returns with VIP set
    mov byte [0x40], 2
gp3:
    pushfd
    mov byte [0x40], 1
gp4:
    sti                             ; VIP = 1: #GP
    cli                             ; fine
    pushf
    pop ax
    mov [32], ax
    push word 0x0200
gp5:
    popf                            ; IF = 1 with VIP: #GP
    pop cx                          ; drop the word (flags unchanged)
    int3                            ; not IOPL-sensitive: protected-mode #BP handler
    mov byte [0x40], 0
gp6:
    hlt                             ; #GP: the end
    jmp $

v86_int31:
    mov word [16], 0x1234
    pushf
    pop ax
    mov [20], ax                    ; inside: VIF cleared
    mov bp, sp
    mov ax, [ss:bp + 4]
    mov [24], ax                    ; the FLAGS image pushed by the redirection
    iret
%include "rom_end.inc"
