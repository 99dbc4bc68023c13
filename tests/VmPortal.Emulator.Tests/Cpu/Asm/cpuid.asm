; CPUID identity and the time-stamp counter MSRs: maximum leaves, leaf 1 features (what is claimed and what must
; not be: PAE, APIC, MTRR, PAT, MMX, SSE), leaf 7 TSC_ADJUST, the brand string (80000002h-80000004h, NUL
; padded), the invariant TSC bit (80000007h), IA32_TSC_ADJUST (MSR 3Bh) and its coupling with writes to the TSC
; (MSR 10h). VME is claimed (Cpu.Vme.cs). QEMU's pentium3 model has another identity and no TSC_ADJUST in TCG, so those lines are '~'.
%include "rom.inc"
%include "probe.inc"

real_main:
    ENTER_PM32 main32
bits 32
FAULT_HANDLER 13, 1

%macro CPUID_PUT 3                  ; name, leaf, register
    mov eax, %2
    xor ecx, ecx
    cpuid
    PUT %1, %3
%endmacro

main32:
    SET_GATE 13, fault_13, 0x8E, 0x08
    CPUID_PUT '~max_basic', 0, eax                  ;! ~max_basic=00000007
    CPUID_PUT 'vendor_ebx', 0, ebx                  ;! vendor_ebx=756E6547
    CPUID_PUT 'vendor_edx', 0, edx                  ;! vendor_edx=49656E69
    CPUID_PUT 'vendor_ecx', 0, ecx                  ;! vendor_ecx=6C65746E
    CPUID_PUT '~signature', 1, eax                  ;! ~signature=00000633
    CPUID_PUT '~features', 1, edx                   ;! ~features=0100A93F
    ; never claimed: MCE(7) APIC(9) MTRR(12) PAE(6) PAT(16) PSE36(17) MMX(23) SSE(25) SSE2(26)
    mov eax, 1
    cpuid
    and edx, (1<<6)|(1<<7)|(1<<9)|(1<<12)|(1<<16)|(1<<17)|(1<<23)|(1<<25)|(1<<26)
    PUT '~not_claimed', edx                         ;! ~not_claimed=00000000
    CPUID_PUT '~features_ecx', 1, ecx               ;! ~features_ecx=00000000
    ; leaf 4: L1D, L1I, L2 (16 KiB, 16 KiB, 512 KiB: ways * line * sets), then the end of the list
    mov eax, 4
    xor ecx, ecx
    cpuid
    PUT '~cache0_eax', eax                          ;! ~cache0_eax=00000121
    PUT '~cache0_ebx', ebx                          ;! ~cache0_ebx=00C0001F
    PUT '~cache0_sets', ecx                         ;! ~cache0_sets=0000007F
    mov eax, 4
    mov ecx, 1
    cpuid
    PUT '~cache1_eax', eax                          ;! ~cache1_eax=00000122
    mov eax, 4
    mov ecx, 2
    cpuid
    PUT '~cache2_eax', eax                          ;! ~cache2_eax=00000143
    PUT '~cache2_sets', ecx                         ;! ~cache2_sets=00000FFF
    mov eax, 4
    mov ecx, 3
    cpuid
    PUT '~cache3_eax', eax                          ;! ~cache3_eax=00000000
    CPUID_PUT '~leaf7_ebx', 7, ebx                  ;! ~leaf7_ebx=00000002
    CPUID_PUT '~leaf7_eax', 7, eax                  ;! ~leaf7_eax=00000000
    mov eax, 7
    mov ecx, 1
    cpuid
    PUT '~leaf7_1_ebx', ebx                         ;! ~leaf7_1_ebx=00000000
    CPUID_PUT '~max_ext', 0x80000000, eax           ;! ~max_ext=80000007
    CPUID_PUT '~ext_features', 0x80000001, edx      ;! ~ext_features=00000000
    CPUID_PUT '~brand0', 0x80000002, eax            ;! ~brand0=6F506D56
    CPUID_PUT '~brand1', 0x80000002, ebx            ;! ~brand1=6C617472
    CPUID_PUT '~brand2', 0x80000002, ecx            ;! ~brand2=72695620
    CPUID_PUT '~brand3', 0x80000002, edx            ;! ~brand3=6C617574
    CPUID_PUT '~brand4', 0x80000003, eax            ;! ~brand4=55504320
    CPUID_PUT '~brand5', 0x80000003, ebx            ;! ~brand5=36692820
    CPUID_PUT '~brand6', 0x80000003, ecx            ;! ~brand6=00293638
    CPUID_PUT '~brand7', 0x80000003, edx            ;! ~brand7=00000000
    CPUID_PUT '~brand8', 0x80000004, eax            ;! ~brand8=00000000
    CPUID_PUT '~brand11', 0x80000004, edx           ;! ~brand11=00000000
    CPUID_PUT '~invariant_tsc', 0x80000007, edx     ;! ~invariant_tsc=00000100
    CPUID_PUT '~beyond_ext', 0x80000008, eax        ;! ~beyond_ext=00000000

    ; ---- IA32_TSC_ADJUST ----
    mov dword [RESULTS + 8], 2                      ; a #GP (QEMU TCG) skips the 2-byte RDMSR/WRMSR
    mov ecx, 0x3B
    xor eax, eax
    xor edx, edx
    rdmsr
    PUT '~adjust_reset', eax                        ;! ~adjust_reset=00000000
    rdtsc
    mov esi, edx                                    ; TSC high before
    mov ecx, 0x3B
    mov edx, 1                                      ; TSC_ADJUST = 1 << 32: the TSC moves up by 2^32
    xor eax, eax
    wrmsr
    rdtsc
    sub edx, esi
    PUT '~adjust_moves_tsc', edx                    ;! ~adjust_moves_tsc=00000001
    ; writing the TSC itself (5 << 32) adds the same change to TSC_ADJUST: 1<<32 + (5<<32 - (1<<32 + small))
    mov ecx, 0x10
    mov edx, 5
    xor eax, eax
    wrmsr
    rdtsc
    PUT '~tsc_written_hi', edx                      ;! ~tsc_written_hi=00000005
    mov ecx, 0x3B
    rdmsr
    PUT '~adjust_follows_hi', edx                   ;! ~adjust_follows_hi=00000004
    neg eax                                         ; the low part is -(TSC at the write): small
    cmp eax, 0x100000
    setb al
    movzx eax, al
    PUT '~adjust_follows_lo_small', eax             ;! ~adjust_follows_lo_small=00000001
    ; TSC_ADJUST = 0 takes the whole adjustment back out: the TSC is small again
    mov ecx, 0x3B
    xor eax, eax
    xor edx, edx
    wrmsr
    rdtsc
    PUT '~tsc_back_hi', edx                         ;! ~tsc_back_hi=00000000
    ; the TSC keeps counting up
    rdtsc
    mov ebx, eax
    rdtsc
    sub eax, ebx
    setnz al
    movzx eax, al
    PUT 'tsc_counts', eax                           ;! tsc_counts=00000001
    EXIT32
%include "rom_end.inc"
