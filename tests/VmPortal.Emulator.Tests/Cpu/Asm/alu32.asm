; 32-bit integer instructions: arithmetic and flags, multiply/divide, shifts and rotates, bit operations,
; MOVSX/MOVZX, SETcc, CMOVcc, BSWAP, XADD, CMPXCHG, CMPXCHG8B, string instructions with 32-bit addressing.
; Expectations (the marked comment lines) are architected results; the whole output is also compared with QEMU.
%include "rom.inc"
real_main:
    ENTER_PM32 main32
bits 32
main32:
    mov eax, 0x7FFFFFFF
    add eax, 1
    pushfd
    pop ebx
    and ebx, 0x8D5
    PUT 'add', eax              ;! add=80000000
    PUT 'add_fl', ebx           ;! add_fl=00000894
    mov eax, 5
    sub eax, 7
    pushfd
    pop ebx
    and ebx, 0x8D5
    PUT 'sub', eax              ;! sub=FFFFFFFE
    PUT 'sub_fl', ebx           ;! sub_fl=00000091
    stc
    mov eax, 0xFFFFFFFF
    adc eax, 0
    pushfd
    pop ebx
    and ebx, 0x8D5
    PUT 'adc', eax              ;! adc=00000000
    PUT 'adc_fl', ebx           ;! adc_fl=00000055
    mov eax, 0x12345678
    mov ecx, 0x9ABCDEF0
    mul ecx
    PUT 'mul_lo', eax           ;! mul_lo=242D2080
    PUT 'mul_hi', edx           ;! mul_hi=0B00EA4E
    mov eax, -7
    mov ecx, 3
    imul ecx
    PUT 'imul_lo', eax          ;! imul_lo=FFFFFFEB
    PUT 'imul_hi', edx          ;! imul_hi=FFFFFFFF
    mov eax, 100000
    imul eax, eax, 300000
    pushfd
    pop ebx
    and ebx, 0x801
    PUT 'imul3', eax            ;! imul3=FC23AC00
    PUT 'imul3_fl', ebx         ;! imul3_fl=00000801
    mov edx, 0
    mov eax, 1000000
    mov ecx, 7
    div ecx
    PUT 'div_q', eax            ;! div_q=00022E09
    PUT 'div_r', edx            ;! div_r=00000001
    mov eax, -1000000
    cdq
    mov ecx, 7
    idiv ecx
    PUT 'idiv_q', eax           ;! idiv_q=FFFDD1F7
    PUT 'idiv_r', edx           ;! idiv_r=FFFFFFFF
    mov eax, 0x12345678
    mov ebx, 0xABCDEF01
    shld eax, ebx, 12
    PUT 'shld', eax             ;! shld=45678ABC
    mov eax, 0x12345678
    shrd eax, ebx, 8
    PUT 'shrd', eax             ;! shrd=01123456
    mov eax, 0x80000001
    rol eax, 1
    pushfd
    pop ebx
    and ebx, 1
    PUT 'rol', eax              ;! rol=00000003
    PUT 'rol_cf', ebx           ;! rol_cf=00000001
    mov eax, 0x80000000
    sar eax, 31
    PUT 'sar', eax              ;! sar=FFFFFFFF
    mov eax, 0x00F0
    bsf ecx, eax
    bsr edx, eax
    PUT 'bsf', ecx              ;! bsf=00000004
    PUT 'bsr', edx              ;! bsr=00000007
    mov dword [0x20000], 0
    mov eax, 35
    bts [0x20000], eax
    PUT 'bts_mem', [0x20004]    ;! bts_mem=00000008
    mov eax, 0x12345678
    btc eax, 3
    setc cl
    movzx ecx, cl
    PUT 'btc', eax              ;! btc=12345670
    PUT 'btc_cf', ecx           ;! btc_cf=00000001
    mov al, 0x80
    movsx ebx, al
    movzx ecx, al
    PUT 'movsx', ebx            ;! movsx=FFFFFF80
    PUT 'movzx', ecx            ;! movzx=00000080
    mov eax, 1
    cmp eax, 2
    mov ebx, 0x11
    mov ecx, 0x22
    cmovl ebx, ecx
    setg dl
    movzx edx, dl
    PUT 'cmovl', ebx            ;! cmovl=00000022
    PUT 'setg', edx             ;! setg=00000000
    mov eax, 0x11223344
    bswap eax
    PUT 'bswap', eax            ;! bswap=44332211
    mov eax, 10
    mov ebx, 32
    xadd eax, ebx
    PUT 'xadd_a', eax           ;! xadd_a=0000002A
    PUT 'xadd_b', ebx           ;! xadd_b=0000000A
    mov dword [0x20010], 5
    mov eax, 5
    mov ecx, 9
    cmpxchg [0x20010], ecx
    setz bl
    movzx ebx, bl
    PUT 'cmpxchg', [0x20010]    ;! cmpxchg=00000009
    PUT 'cmpxchg_zf', ebx       ;! cmpxchg_zf=00000001
    mov dword [0x20020], 1
    mov dword [0x20024], 2
    mov eax, 1
    mov edx, 2
    mov ebx, 0xAAAA
    mov ecx, 0xBBBB
    cmpxchg8b [0x20020]
    PUT 'cx8_lo', [0x20020]     ;! cx8_lo=0000AAAA
    PUT 'cx8_hi', [0x20024]     ;! cx8_hi=0000BBBB
    ; string ops
    mov edi, 0x21000
    mov eax, 0xDEADBEEF
    mov ecx, 16
    cld
    rep stosd
    mov esi, 0x21000
    mov edi, 0x22000
    mov ecx, 64
    rep movsb
    PUT 'movs', [0x2203C]       ;! movs=DEADBEEF
    PUT 'movs_edi', edi         ;! movs_edi=00022040
    mov edi, 0x22000
    mov eax, 0x12345678
    mov ecx, 16
    repne scasd
    PUT 'scas_ecx', ecx         ;! scas_ecx=00000000
    ; BCD
    mov al, 0x29
    add al, 0x18
    daa
    movzx eax, al
    PUT 'daa', eax              ;! daa=00000047
    ; LOOP / ENTER / LEAVE
    mov ecx, 10
    xor eax, eax
.lp:
    add eax, ecx
    loop .lp
    PUT 'loop', eax             ;! loop=00000037
    mov ebp, 0x1234
    enter 16, 0
    mov eax, esp
    leave
    PUT 'enter_sp', eax         ;! enter_sp=0008FFEC
    PUT 'leave_bp', ebp         ;! leave_bp=00001234
    ; CPUID leaf 1 family
    mov eax, 0
    cpuid
    PUT 'vendor', ebx           ;! vendor=756E6547
    EXIT32
%include "rom_end.inc"
