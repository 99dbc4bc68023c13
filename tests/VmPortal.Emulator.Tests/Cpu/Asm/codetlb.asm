; Instruction fetch through the TLB: code on one page calls a routine on another page a thousand times (each call
; and return crosses pages), then the routine's page is remapped to other code and INVLPG, a CR3 reload, or a
; not-present entry must each take effect at the next call. BlockCacheTests also counts its page walks.
%include "rom.inc"
%include "probe.inc"
%define PD 0x10000
%define PT 0x11000
%define FN 0x36000                              ; linear page of the routine

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 14, 1

main32:
    SET_GATE 14, fault_14, 0x8E, 0x08
    ; page table: identity map 0-4 MiB, supervisor + writable
    IDENTITY_PT PD, PT, 0x003
    ; two versions of the routine: "mov eax, 1 / ret" at physical 36000h, "mov eax, 2 / ret" at 37000h
    mov dword [0x36000], 0x000001B8
    mov word [0x36004], 0xC300
    mov dword [0x37000], 0x000002B8
    mov word [0x37004], 0xC300
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .paged
.paged:
    mov esi, FN - ROM_BASE                      ; CS base is F0000h: call through an offset
    xor ebx, ebx
    mov ecx, 1000
.calls:
    call esi
    add ebx, eax
    dec ecx
    jnz .calls
    PUT 'calls', ebx                            ;! calls=000003E8
    ; the routine's page now maps the second version: INVLPG makes the fetch see it
    mov dword [PT + (FN >> 12) * 4], 0x00037003
    invlpg [FN]
    call esi
    PUT 'invlpg', eax                           ;! invlpg=00000002
    ; back to the first version, made visible by a CR3 reload
    mov dword [PT + (FN >> 12) * 4], 0x00036003
    mov eax, cr3
    mov cr3, eax
    call esi
    PUT 'cr3', eax                              ;! cr3=00000001
    ; not present: the call faults at the routine's first byte (CR2 = FN, error 0: a supervisor read)
    mov dword [PT + (FN >> 12) * 4], 0x00036002
    invlpg [FN]
    mov dword [RESULTS], 0
    mov eax, .after                             ; the handler adds [RESULTS + 8] to the faulting EIP (FN's offset)
    sub eax, FN - ROM_BASE
    mov [RESULTS + 8], eax
    mov eax, 0x55555555
    call esi
.after:
    add esp, 4                                  ; the return address the call pushed
    PUT 'np_vector', [RESULTS]                  ;! np_vector=0000000E
    PUT 'np_err', [RESULTS + 4]                 ;! np_err=00000000
    PUT 'np_cr2', [RESULTS + 12]                ;! np_cr2=00036000
    PUT 'np_eax', eax                           ;! np_eax=55555555
    EXIT32
%include "rom_end.inc"
